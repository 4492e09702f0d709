"""The SentencePiece model that fixes SRT's token vocabulary independently of any one dataset's catalog."""

import hashlib
import io
import os
from logging import getLogger

import sentencepiece as spm


def train_tokenizer(corpus, vocab_size):
    """Serialized BPE model trained on `corpus`; the vocabulary shrinks to what a small corpus supports."""
    sentences = [line for line in corpus if line]
    if not sentences:
        raise ValueError("cannot train a SentencePiece tokenizer: every item text is empty")
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="bpe",
        hard_vocab_limit=False,
        character_coverage=1.0,
        minloglevel=2,
    )
    return model.getvalue()


def load_tokenizer(config, corpus):
    """The configured SentencePiece model (`tokenizer_model`), or one trained on `corpus` and cached on disk.

    Returns (processor, serialized model). The cache key is the corpus and vocabulary size, so every run on the same
    item text reuses one vocabulary.
    """
    logger = getLogger()
    path = config["tokenizer_model"]
    if path:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"tokenizer_model: SentencePiece model file '{path}' does not exist")
        with open(path, "rb") as f:
            proto = f.read()
    else:
        vocab_size = config["tokenizer_vocab_size"]
        digest = hashlib.sha1("\n".join(corpus).encode("utf-8")).hexdigest()[:12]
        cache_dir = config["tokenizer_dir"]
        path = os.path.join(cache_dir, f"{config['dataset']}-bpe{vocab_size}-{digest}.model")
        if os.path.isfile(path):
            with open(path, "rb") as f:
                proto = f.read()
        else:
            proto = train_tokenizer(corpus, vocab_size)
            os.makedirs(cache_dir, exist_ok=True)
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(proto)
            os.replace(tmp, path)
    processor = spm.SentencePieceProcessor(model_proto=proto)
    message = f"SentencePiece tokenizer {path}: {processor.get_piece_size()} pieces"
    if not config["tokenizer_model"] and processor.get_piece_size() < config["tokenizer_vocab_size"]:
        message += f" (reduced from the requested {config['tokenizer_vocab_size']}: the item text is too small)"
    logger.info(message)
    return processor, proto
