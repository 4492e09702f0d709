"""Transformer shapes by the names the paper's Table 3 uses: L{layers}-H{heads}-D{hidden}.

`architecture: L8-H4-D256` in any config sets n_layers, n_heads and hidden_size (inner_size 4 x hidden unless the
config sets it). Any name of that form works; these are the paper's.
"""

import re

TABLE3 = ("L24-H4-D256", "L16-H4-D256", "L8-H4-D256", "L8-H4-D128", "L8-H2-D128", "L4-H2-D128", "L2-H2-D128",
          "L4-H2-D64")
_NAME = re.compile(r"^L(\d+)-H(\d+)-D(\d+)$")


def parse(name):
    """{'n_layers', 'n_heads', 'hidden_size'} of a name such as 'L8-H4-D256'."""
    match = _NAME.match(str(name))
    if not match:
        raise ValueError(f"architecture: '{name}' is not of the form L<layers>-H<heads>-D<hidden>, e.g. {TABLE3[2]}")
    layers, heads, hidden = map(int, match.groups())
    if min(layers, heads, hidden) < 1 or hidden % heads:
        raise ValueError(f"architecture: '{name}' needs positive sizes and a hidden size divisible by the heads")
    return {"n_layers": layers, "n_heads": heads, "hidden_size": hidden}


SHAPE_KEYS = ("n_layers", "n_heads", "hidden_size", "inner_size")


def apply(final_config, sources):
    """Fill the shape keys of `final_config` from its `architecture` key, if set.

    `sources` are the config's inputs from lowest to highest priority (files, dict, command line), as RecBole
    orders them: a shape key set where the architecture is set, to another value, is ambiguous (an error); one set
    with higher priority wins (e.g. `--hidden_size=128` over a yaml's architecture), one set with lower priority
    loses (e.g. `--architecture=L2-H2-D128` over a yaml's hidden_size). inner_size is 4 x hidden unless set with
    at least the architecture's priority.
    """
    name = final_config.get("architecture")
    if not name:
        return
    shape = parse(name)

    def level(key):
        return max((i for i, source in enumerate(sources) if key in source), default=-1)

    arch_level = level("architecture")
    for key, value in shape.items():
        if level(key) == arch_level and sources[arch_level][key] != value:
            raise ValueError(f"architecture: '{name}' sets {key}={value}, but the same settings also set "
                             f"{key}={sources[arch_level][key]}")
        if level(key) < arch_level:
            final_config[key] = value
    if level("inner_size") < arch_level:
        final_config["inner_size"] = 4 * final_config["hidden_size"]
