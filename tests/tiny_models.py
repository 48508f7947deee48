"""Build tiny, real models of every architecture the translators use, in seconds, offline.

Each builder writes a folder that `from_pretrained` loads like a Hub checkpoint: a randomly initialised
model of the real class and a tokenizer of the real class trained here with sentencepiece. Outputs are
nonsense, but every code path (language tokens, forced BOS, prefixes, batching, generation) is the real one.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = (
    "hello world this is a test the quick brown fox jumps over lazy dog how are you today "
    "ola mundo isto e um teste como voce esta hoje o rapido cachorro "
    "hallo wereld dit is een test hoe gaat het met je vandaag de snelle bruine vos "
    "der schnelle braune fuchs springt uber den faulen hund wie geht es dir heute "
    "python code function return value list item first second third please explain why"
).split()


def _corpus(n: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 14))]
        words[0] = words[0].capitalize()
        lines.append(" ".join(words) + rng.choice([".", "?", "!", ","]))
    lines.append("0123456789 .,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~` áéíóúãõçâêôàüöäßñ")
    return lines


def train_spm(folder: Path, vocab_size: int = 600) -> Path:
    import sentencepiece as spm

    folder.mkdir(parents=True, exist_ok=True)
    text = folder / "corpus.txt"
    text.write_text("\n".join(_corpus()), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(text), model_prefix=str(folder / "sp"), vocab_size=vocab_size, model_type="unigram",
        character_coverage=1.0, byte_fallback=True, hard_vocab_limit=False, minloglevel=2,
    )
    text.unlink()
    return folder / "sp.model"


def _spm_vocab(model_file: Path) -> list[tuple[str, float]]:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model_file))
    return [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]


def _bpe_vocab(model_file: Path, specials: list[str]) -> dict[str, int]:
    """A vocabulary for the BPE-backed tokenizers (NLLB, Seamless): single pieces, no merges, suffice here."""
    vocab = {tok: i for i, tok in enumerate(specials)}
    for p, _ in _spm_vocab(model_file):
        vocab.setdefault(p, len(vocab))
    return vocab


def _vocab_size(tok) -> int:
    ids = list(tok.get_vocab().values()) + list(getattr(tok, "lang_code_to_id", {}).values())
    return max(ids) + 1 + getattr(tok, "num_madeup_words", 0)


def _seed_and_sharpen(model, seed: int = 0, std: float = 0.3):
    """Re-initialise with a larger std so greedy decoding has clear winners (no argmax ties)."""
    import torch

    torch.manual_seed(seed)
    with torch.no_grad():
        for _name, p in model.named_parameters():
            if p.dim() > 1:
                p.normal_(0.0, std)
    return model


def build_marian(folder: Path, work: Path) -> Path:
    """An OPUS-MT style Marian model (shared vocab, source.spm/target.spm)."""
    import shutil

    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    sp = train_spm(work / "marian_spm")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(sp, folder / "source.spm")
    shutil.copy(sp, folder / "target.spm")
    pieces = [p for p, _ in _spm_vocab(sp)]
    vocab = {"</s>": 0, "<unk>": 1}
    for p in pieces:
        if p not in vocab and p not in ("<s>",):
            vocab[p] = len(vocab)
    vocab["<pad>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    tok = MarianTokenizer(source_spm=str(folder / "source.spm"), target_spm=str(folder / "target.spm"),
                          vocab=str(folder / "vocab.json"))
    cfg = MarianConfig(
        vocab_size=len(vocab), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128,
        pad_token_id=vocab["<pad>"], eos_token_id=0, decoder_start_token_id=vocab["<pad>"],
        forced_eos_token_id=0, share_encoder_decoder_embeddings=True,
    )
    model = _seed_and_sharpen(MarianMTModel(cfg))
    import torch

    with torch.no_grad():  # CTranslate2 and real checkpoints start the decoder from a zero pad row
        model.get_input_embeddings().weight[cfg.pad_token_id].zero_()
    model.generation_config.max_length = 64
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _m2m_config(vocab_size: int, pad: int, bos: int, eos: int, d_model: int = 32):
    from transformers import M2M100Config

    return M2M100Config(
        vocab_size=vocab_size, d_model=d_model, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=2 * d_model, decoder_ffn_dim=2 * d_model,
        max_position_embeddings=128,
        pad_token_id=pad, bos_token_id=bos, eos_token_id=eos, decoder_start_token_id=eos,
    )


def build_m2m(folder: Path, work: Path, d_model: int = 32) -> Path:
    """M2M100 with its own tokenizer. d_model=64 or more for bitsandbytes 4-bit (blocks of 64 weights)."""
    import shutil

    from transformers import M2M100ForConditionalGeneration, M2M100Tokenizer

    sp = train_spm(work / "m2m_spm")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(sp, folder / "sentencepiece.bpe.model")
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for p, _ in _spm_vocab(sp):
        if p not in vocab:
            vocab[p] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    tok = M2M100Tokenizer(vocab_file=str(folder / "vocab.json"), spm_file=str(folder / "sentencepiece.bpe.model"))
    model = _seed_and_sharpen(M2M100ForConditionalGeneration(_m2m_config(_vocab_size(tok), 1, 0, 2, d_model)))
    model.generation_config.max_length = 64
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def build_nllb(folder: Path, work: Path) -> Path:
    """NLLB is an M2M100 model with the NLLB tokenizer (FLORES-200 codes such as nld_Latn)."""
    from transformers import M2M100ForConditionalGeneration, NllbTokenizer

    sp = train_spm(work / "nllb_spm")
    tok = NllbTokenizer(vocab=_bpe_vocab(sp, ["<s>", "<pad>", "</s>", "<unk>"]), merges=[])
    model = _seed_and_sharpen(M2M100ForConditionalGeneration(
        _m2m_config(_vocab_size(tok), tok.pad_token_id, tok.bos_token_id, tok.eos_token_id)))
    model.generation_config.max_length = 64
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def build_mbart50(folder: Path, work: Path) -> Path:
    from transformers import MBart50Tokenizer, MBartConfig, MBartForConditionalGeneration

    sp = train_spm(work / "mbart_spm")
    tok = MBart50Tokenizer(vocab=_spm_vocab(sp))  # sentencepiece order in: fairseq ids out, no gaps, as the real one
    cfg = MBartConfig(
        vocab_size=_vocab_size(tok), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.eos_token_id, tokenizer_class="MBart50Tokenizer",
    )
    model = _seed_and_sharpen(MBartForConditionalGeneration(cfg))
    model.generation_config.max_length = 64
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


MADLAD_LANGS = ["en", "nl", "pt", "de", "es", "fr", "zh", "zh_Hant", "ar"]


def build_madlad(folder: Path, work: Path) -> Path:
    """MADLAD-400 is a T5 model whose source text starts with a <2xx> target-language token."""
    from transformers import T5Config, T5ForConditionalGeneration, T5Tokenizer

    sp = train_spm(work / "t5_spm")
    vocab = [(p, s) for p, s in _spm_vocab(sp) if p not in {"<s>", "</s>", "<unk>", "<pad>"}]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [(f"<2{c}>", 0.0) for c in MADLAD_LANGS] + vocab
    tok = T5Tokenizer(vocab=vocab, extra_ids=0)
    cfg = T5Config(
        vocab_size=_vocab_size(tok), d_model=32, d_kv=16, d_ff=64, num_layers=1, num_decoder_layers=1, num_heads=2,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id,
    )
    model = _seed_and_sharpen(T5ForConditionalGeneration(cfg))
    model.generation_config.max_length = 64
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_chat_lm(folder: Path, work: Path, hidden: int = 32) -> Path:
    """A tiny Llama causal LM with a ChatML chat template and a byte-level BPE tokenizer.
    hidden=64 or more for bitsandbytes 4-bit (blocks of 64 weights)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>", "<s>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(_corpus(), trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<s>", eos_token="<|im_end|>", pad_token="<pad>",
        unk_token="<|endoftext|>")
    tok.chat_template = CHAT_TEMPLATE
    cfg = LlamaConfig(
        vocab_size=_vocab_size(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512, pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=False,
    )
    model = _seed_and_sharpen(LlamaForCausalLM(cfg), std=0.2)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


BUILDERS = {
    "marian": build_marian, "m2m": build_m2m, "nllb": build_nllb, "mbart": build_mbart50,
    "madlad": build_madlad, "chat": build_chat_lm,
}


SEAMLESS_LANGS = ["eng", "nld", "por", "deu", "cmn", "cmn_Hant", "arb"]


def build_seamless(folder: Path, work: Path) -> Path:
    """The text-to-text half of SeamlessM4T-v2, with its tokenizer (codes such as __nld__)."""
    from transformers import SeamlessM4TTokenizer, SeamlessM4Tv2Config, SeamlessM4Tv2ForTextToText

    sp = train_spm(work / "seamless_spm")
    lang_tokens = [f"__{c}__" for c in SEAMLESS_LANGS]
    tok = SeamlessM4TTokenizer(vocab=_bpe_vocab(sp, ["<pad>", "<unk>", "<s>", "</s>"]), merges=[],
                               additional_special_tokens=lang_tokens,
                               src_lang="eng", tgt_lang="nld")
    size = _vocab_size(tok)
    cfg = SeamlessM4Tv2Config(
        vocab_size=size, hidden_size=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128,
        speech_encoder_layers=1, speech_encoder_attention_heads=2, speech_encoder_intermediate_size=64,
        t2u_encoder_layers=1, t2u_decoder_layers=1, t2u_encoder_attention_heads=2, t2u_decoder_attention_heads=2,
        t2u_encoder_ffn_dim=64, t2u_decoder_ffn_dim=64, t2u_vocab_size=32, t2u_max_position_embeddings=64,
        pad_token_id=0, bos_token_id=2, eos_token_id=3, decoder_start_token_id=3,
    )
    model = _seed_and_sharpen(SeamlessM4Tv2ForTextToText(cfg))
    model.generation_config.text_decoder_lang_to_code_id = {c: tok.convert_tokens_to_ids(f"__{c}__")
                                                            for c in SEAMLESS_LANGS}
    model.generation_config.max_length = 64
    model.generation_config._from_model_config = False  # else loading rebuilds it and drops the language map
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


BUILDERS["seamless"] = build_seamless
