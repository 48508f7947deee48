"""A tiny CometKiwi-shaped model folder (hparams.yaml, checkpoints/model.ckpt, and its encoder's config and
tokenizer in encoder/), built offline with unbabel-comet's own UnifiedMetric class, as Unbabel's wmt22-cometkiwi-da
is laid out. Random weights: its scores mean nothing, but comet-score loads and runs it as it would the real one.
Run with the Python of the environment unbabel-comet is installed in (it needs transformers 4):

    .venv-comet/bin/python tests/comet/make_tiny_cometkiwi.py OUT_DIR
"""

import sys
from pathlib import Path

import pytorch_lightning
import torch
import yaml
from comet.models import UnifiedMetric
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import XLMRobertaConfig, XLMRobertaTokenizerFast

TEXTS = ["the house is big and the garden is green", "a casa é grande e o jardim é verde",
         "where can I park my car", "onde posso estacionar meu carro", "the library opens at nine",
         "a biblioteca abre às nove"]


def main(out: Path) -> None:
    encoder = out / "encoder"
    encoder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok.train_from_iterator(TEXTS * 10, trainers.UnigramTrainer(vocab_size=120, special_tokens=specials,
                                                                 unk_token="<unk>"))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
                                                       special_tokens=[("<s>", 0), ("</s>", 2)])
    fast = XLMRobertaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                   cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
    fast.save_pretrained(encoder)
    XLMRobertaConfig(vocab_size=len(fast), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=128, pad_token_id=1, bos_token_id=0,
                     eos_token_id=2).save_pretrained(encoder)
    torch.manual_seed(0)
    model = UnifiedMetric(encoder_model="XLM-RoBERTa", pretrained_model=str(encoder), input_segments=["mt", "src"],
                          hidden_sizes=[16], final_activation="sigmoid", load_pretrained_weights=False)
    (out / "checkpoints").mkdir(exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                "pytorch-lightning_version": pytorch_lightning.__version__}, out / "checkpoints" / "model.ckpt")
    hparams = dict(model.hparams) | {"class_identifier": "unified_metric"}
    (out / "hparams.yaml").write_text(yaml.safe_dump(hparams), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
