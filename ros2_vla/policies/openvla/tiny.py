"""OpenVLA-convention checkpoints with random weights, built from config with no download.

For tests and benchmarks. The model is a Llava (SigLIP vision tower -> MLP projector -> Llama), which
transformers builds offline and loads through `AutoModelForImageTextToText`, the same path a real
checkpoint takes. It follows OpenVLA's conventions wherever the backend relies on them:

- a SentencePiece-like tokenizer (ids 0/1/2 = <unk>/<s>/</s>, words start with "▁", a lone "▁" piece for
  the space before the action tokens), whose base vocabulary's last 256 ids are the action tokens;
- added tokens after the base vocabulary (<image>, <pad>, as OpenVLA added <PAD> at 32000), and the
  embedding padded to a multiple of 64 with `pad_to_multiple_of` in config.json (OpenVLA: 32001 -> 32064);
- `n_action_bins` and `norm_stats` in config.json (OpenVLA's layout; default: the published bridge_orig).

`tiny_config` is a few hundred thousand parameters (CPU tests, 4-bit included: every Linear input is a
multiple of bitsandbytes' 64-wide blocks). `openvla_7b_shapes` has OpenVLA-7B's sizes (Llama 2 7B and a
~0.6B vision tower at 224 px, 256 patches) for GPU benchmarks only.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import (
    AutoModelForImageTextToText,
    LlamaConfig,
    LlavaConfig,
    LlavaProcessor,
    PreTrainedTokenizerFast,
    SiglipVisionConfig,
)

from ros2_vla.policies.openvla.published_stats import bridge_orig_norm_stats

try:  # transformers 5 without torchvision: the PIL backend, named explicitly to skip a fallback warning
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil as _ImageProcessor
except ImportError:  # pragma: no cover - older transformers
    from transformers import SiglipImageProcessor as _ImageProcessor

PAD_TO_MULTIPLE_OF = 64  # OpenVLA pads the embedding rows to a multiple of 64
NUM_BINS = 256
IMAGE_TOKEN = "<image>"
SPACE = "\u2581"  # SentencePiece's word-start marker

# Enough words for the prompt and everyday instructions; others become <unk> (the model is random anyway).
_PUNCTUATION = (":", "?", ",", ".", "!", "'", "-")
_WORDS = (
    "In What Out in what action should the robot take to do pick up place put move push pull lift drop open "
    "close turn rotate slide stack grasp grab release reach wipe fold pour insert remove the a an it on in into "
    "onto from of off at near next left right top bottom front back middle red green blue yellow black white "
    "orange purple pink cube cup block bowl plate drawer door lid pot pan spoon fork knife towel cloth sponge "
    "bottle can box toy carrot banana apple table sink shelf stove microwave gripper object"
).split()


def build_tokenizer(base_vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """A word-level tokenizer with Llama 2's layout: `base_vocab_size` base ids, then <image> and <pad>.

    Ids: 0 <unk>, 1 <s>, 2 </s>, 3 "▁", 4 "\\n", punctuation, "▁word"/"word" pairs, then <unusedN> fillers;
    the last NUM_BINS base ids are therefore fillers the text never produces, like Llama's rare pieces.
    """
    vocab: dict[str, int] = {}
    for piece in ("<unk>", "<s>", "</s>", SPACE, "\n", *_PUNCTUATION):
        vocab[piece] = len(vocab)
    for word in _WORDS:
        for piece in (SPACE + word, word):
            vocab.setdefault(piece, len(vocab))
    if base_vocab_size < len(vocab) + NUM_BINS:
        raise ValueError(f"base_vocab_size must be >= {len(vocab) + NUM_BINS}, got {base_vocab_size}")
    while len(vocab) < base_vocab_size:
        vocab[f"<unused{len(vocab)}>"] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\n"), "isolated"),  # a newline is its own piece, as Llama's <0x0A>
        pre_tokenizers.Punctuation("isolated"),
        pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="first"),  # "Out: " ends in a lone "▁"
    ])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tok.decoder = decoders.Metaspace(replacement=SPACE, prepend_scheme="first")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    tokenizer.add_tokens([IMAGE_TOKEN], special_tokens=True)
    tokenizer.add_special_tokens({"pad_token": "<pad>"})
    return tokenizer


def build_processor(tokenizer: PreTrainedTokenizerFast, image_size: int, patch_size: int) -> LlavaProcessor:
    """Llava processor: SigLIP-style resize to image_size and [-1, 1] normalization, image token expansion."""
    image_processor = _ImageProcessor(size={"height": image_size, "width": image_size})
    return LlavaProcessor(
        image_processor=image_processor, tokenizer=tokenizer, patch_size=patch_size,
        vision_feature_select_strategy="full", image_token=IMAGE_TOKEN, num_additional_image_tokens=0,
    )


def _padded(n: int) -> int:
    return -(-n // PAD_TO_MULTIPLE_OF) * PAD_TO_MULTIPLE_OF


def _llava_config(tokenizer, vision: SiglipVisionConfig, text: dict, norm_stats: dict | None) -> LlavaConfig:
    text_config = LlamaConfig(
        vocab_size=_padded(len(tokenizer)), bos_token_id=1, eos_token_id=2, pad_token_id=tokenizer.pad_token_id, **text
    )
    config = LlavaConfig(
        vision_config=vision, text_config=text_config, image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_select_strategy="full", vision_feature_layer=-1, projector_hidden_act="gelu",
        image_seq_length=(vision.image_size // vision.patch_size) ** 2, tie_word_embeddings=False,
    )
    # OpenVLA's own config fields, read by the backend the way predict_action reads them
    config.pad_to_multiple_of = PAD_TO_MULTIPLE_OF
    config.n_action_bins = NUM_BINS
    config.norm_stats = bridge_orig_norm_stats() if norm_stats is None else norm_stats
    return config


def tiny_config(tokenizer: PreTrainedTokenizerFast, norm_stats: dict | None = None) -> LlavaConfig:
    """A ~0.4M-parameter Llava: 32 px images, 8 px patches (16 image tokens), 2-layer SigLIP and Llama."""
    vision = SiglipVisionConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8
    )
    text = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=256)
    return _llava_config(tokenizer, vision, text, norm_stats)


def openvla_7b_shapes(tokenizer: PreTrainedTokenizerFast, norm_stats: dict | None = None) -> LlavaConfig:
    """OpenVLA-7B's sizes: Llama 2 7B (4096 hidden, 32 layers, 32 heads, 11008 MLP, 32064 rows) behind a
    SigLIP-so400m-wide tower at 224 px / 14 px patches (256 image tokens, as OpenVLA) made 40 layers deep, so it
    holds ~0.6B parameters like OpenVLA's fused DINOv2 + SigLIP encoder. `tokenizer` needs 32000 base ids."""
    vision = SiglipVisionConfig(
        hidden_size=1152, intermediate_size=4304, num_hidden_layers=40, num_attention_heads=16, image_size=224,
        patch_size=14,
    )
    text = dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                num_key_value_heads=32, max_position_embeddings=4096, rms_norm_eps=1e-5)
    return _llava_config(tokenizer, vision, text, norm_stats)


def save_checkpoint(
    path: str | Path, config: LlavaConfig, processor: LlavaProcessor, seed: int = 0,
    dtype: torch.dtype = torch.float32, device: str = "cpu",
) -> Path:
    """Build a random model for `config` on `device` and save it with its processor as a checkpoint dir."""
    path = Path(path)
    torch.manual_seed(seed)
    with torch.device(device):  # built where it runs, directly in `dtype`: no fp32 copy of a 7B model
        model = AutoModelForImageTextToText.from_config(config, dtype=dtype).eval()
    model.save_pretrained(path)
    processor.save_pretrained(path)
    del model
    return path


def build_tiny_checkpoint(path: str | Path, norm_stats: dict | None = None, seed: int = 0) -> Path:
    """The tiny OpenVLA-convention checkpoint, fp32, saved to `path` (about 2 MB, well under a second)."""
    tokenizer = build_tokenizer(1024)
    return save_checkpoint(path, tiny_config(tokenizer, norm_stats), build_processor(tokenizer, 32, 8), seed)


def build_openvla_7b_shaped_checkpoint(path: str | Path, device: str = "cuda", seed: int = 0) -> Path:
    """A random OpenVLA-7B-shaped checkpoint in bf16 (~15 GB on disk); build it on a GPU."""
    tokenizer = build_tokenizer(32000)
    config = openvla_7b_shapes(tokenizer)
    return save_checkpoint(path, config, build_processor(tokenizer, 224, 14), seed, torch.bfloat16, device)
