"""Continued pretraining: plain target-language text, packed into sequences of --max_seq_length (a continuous
stream cut where it is full), the loss on every token; LoRA (and new vocabulary rows) as for SFT."""

from __future__ import annotations

from l2l.cli import UsageError, log
from l2l.train.config import PretrainOptions


def text_splits(cfg: PretrainOptions):
    """The passages as a `text` dataset, shuffled with --seed, with a validation share when --val_fraction asks;
    with --streaming or --mix, streamed."""
    import random

    import datasets

    from l2l.data import read_texts

    if cfg.streaming or cfg.mix:
        return streamed_splits(cfg)

    texts, _ = read_texts(cfg.dataset_name, cfg.text_field, 10**9, cfg.trust_remote_code)
    if not texts:
        raise UsageError(f"no text in {cfg.dataset_name}")
    random.Random(cfg.seed).shuffle(texts)
    n_val = round(cfg.val_fraction * len(texts)) if cfg.val_fraction else 0
    if cfg.val_fraction and not 0 < n_val < len(texts):
        raise UsageError(f"--val_fraction {cfg.val_fraction} leaves no training or no validation passages")
    log(f"continued pretraining on {len(texts) - n_val} passages" + (f", {n_val} held out" if n_val else ""))
    train = datasets.Dataset.from_dict({"text": texts[n_val:]})
    return train, datasets.Dataset.from_dict({"text": texts[:n_val]}) if n_val else None


def streamed_splits(cfg: PretrainOptions):
    """Each source as a stream, its first --val_passages held out; the sources interleaved by their --mix
    shares (a smaller one read again until every one has been read through), shuffled in a window of passages."""
    import datasets

    from l2l.data import stream_texts

    shares = cfg.mix_shares()
    streams, held = [], []
    for source in shares:
        stream = stream_texts(source, cfg.text_field, cfg.trust_remote_code)
        if cfg.val_passages:
            held += [row["text"] for row in stream.take(cfg.val_passages)]
            stream = stream.skip(cfg.val_passages)
        streams.append(stream)
    train = streams[0] if len(streams) == 1 else datasets.interleave_datasets(
        streams, probabilities=list(shares.values()), seed=cfg.seed, stopping_strategy="all_exhausted")
    log("continued pretraining on a stream of " + ", ".join(f"{s} ({v:.0%})" for s, v in shares.items())
        + (f"; {len(held)} passages held out" if held else ""))
    train = train.shuffle(seed=cfg.seed, buffer_size=SHUFFLE_WINDOW)
    return train, datasets.Dataset.from_dict({"text": held}) if held else None


SHUFFLE_WINDOW = 2000  # passages shuffled together in a stream


def pretrain(cfg: PretrainOptions) -> int:
    """The whole run: checks, text, model, training, outputs (pretrain.py and finetune.py --raw_text)."""
    from l2l.modeling import device_for
    from l2l.train import loading, outputs, runs

    # Check the outputs and the recorded settings before anything slow
    runs.check_outputs(cfg)
    device = device_for(cfg.cpu)
    tokenizer = loading.load_tokenizer_for_training(cfg.base_model, cfg.padding, cfg.trust_remote_code)
    # Load the text
    train_ds, eval_ds = text_splits(cfg)

    # Initialize the trainer: packed into a continuous stream
    trainer = runs.sft_trainer(cfg, None, device, tokenizer, train_ds, eval_ds, packing=True,
                               packing_strategy="wrapped")
    # Train
    result = runs.train(trainer, trainer.args.output_dir, fresh=cfg.overwrite)
    # Save (and push when asked)
    summary = runs.summarize(trainer, result, train_ds, eval_ds, "passages")
    outputs.finish(trainer, tokenizer, cfg, "pretrain", summary, [tokenizer.eos_token_id], "tokenizer")
    return 0
