from recbole_srt.quick_start import prepare

ML_TEXT = {
    "load_col": {"inter": ["user_id", "item_id", "timestamp"], "item": ["item_id", "movie_title", "class"]},
    "text_fields": ["movie_title", "class"],
}
TOY_TEXT = {"load_col": {"inter": ["user_id", "item_id", "timestamp"], "item": ["item_id", "title", "brand"]}}


def build(model, dataset, base, **overrides):
    """Config, dataloaders and a freshly built model for `dataset` under the test's small settings."""
    text = TOY_TEXT if dataset in ("beauty_toy", "two_sources") else ML_TEXT
    config, _, loaders, built = prepare(model, dataset, config_dict={**base, **text, **overrides})
    return config, built, loaders
