"""OpenVLA checkpoints with random weights, laid out file for file as openvla/openvla-7b, built offline.

For tests and benchmarks: nothing is downloaded, so the package makes its own. What is real is the
layout: config.json with OpenVLAConfig's fields, sharded bf16 safetensors under the checkpoint's key names
with an index, preprocessor_config.json with the PrismaticImageProcessor's tvf_* steps,
processor_config.json, and a Llama-2-layout tokenizer (tokenizer.json: byte-fallback BPE, ids 0-2
<unk> <s> </s>, 3-258 the byte pieces, 32000 base ids, <PAD> added at 32000; tokenizer_config.json naming
LlamaTokenizer). What is not: the weights (random), the tokenizer's merges (learned from a few hundred
robot instructions, not Llama's corpus; there is no SentencePiece tokenizer.model), and OpenVLA's remote
code files, which this package never reads.

- `build_test_checkpoint`: the full-size DINOv2 + SigLIP backbone (0.73 B parameters, as OpenVLA-7B) with
  a tiny Llama (2 layers, 64 wide, 32064 rows): about 1.5 GB, 30-60 s on 2 CPU cores.
- `build_7b_shaped_checkpoint`: every OpenVLA-7B size (Llama 2 7B), about 15 GB; for GPU benchmarks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ros2_vla.actions.tokenization import OPENVLA_NUM_BINS
from ros2_vla.policies.openvla.architecture import read_architecture
from ros2_vla.policies.openvla.backbones import vision_backbone
from ros2_vla.policies.openvla.model import OpenVlaModel
from ros2_vla.policies.openvla.prompt import SENTENCEPIECE_SPACE
from ros2_vla.policies.openvla.published_stats import bridge_orig_norm_stats
from ros2_vla.policies.openvla.weights import save_sharded

BASE_VOCAB = 32000  # Llama 2's vocabulary
PAD_TO_MULTIPLE_OF = 64  # OpenVLA: 32001 ids (with <PAD>) padded to 32064 embedding rows
PAD_TOKEN = "<PAD>"
SPACE_ID = 29871  # the id of SentencePiece's word-start piece in Llama 2's vocabulary

# initializer_range 0.2 (Llama's is 0.02): attention this narrow with weights that small is uniform over the
# 270 positions, so a few instruction tokens would barely move the action; trained models attend sharply
TINY_LLAMA = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=4,
    max_position_embeddings=2048,
    rms_norm_eps=1e-5,
    initializer_range=0.2,
)

_CORPUS_WORDS = (
    "In What action should the robot take to Out pick up place put move push pull lift drop open close turn rotate "
    "slide stack grasp grab release reach wipe fold pour insert remove the a an it on in into onto from of off at "
    "near next left right top bottom front back middle red green blue yellow black white orange purple pink cube "
    "cup block bowl plate drawer door lid pot pan spoon fork knife towel cloth sponge bottle can box toy carrot "
    "banana apple table sink shelf stove microwave gripper object"
).split()


def build_tokenizer() -> Any:
    """A Llama-2-layout fast tokenizer (see the module doc) with <PAD> added at id 32000."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    space = SENTENCEPIECE_SPACE  # "▁"
    normalizer = normalizers.Sequence([normalizers.Prepend(space), normalizers.Replace(" ", space)])
    learner = Tokenizer(models.BPE(unk_token="<unk>"))
    learner.normalizer = normalizer
    # merges learned within words, as SentencePiece learns them (the final tokenizer, like Llama's, has no
    # pre-tokenizer, so merges across a word start would otherwise swallow whole phrases)
    learner.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=space, prepend_scheme="never"),
            pre_tokenizers.Punctuation(),
            pre_tokenizers.Split("\n", "isolated"),
        ]
    )
    corpus = [
        "In: What action should the robot take to " + " ".join(_CORPUS_WORDS[i : i + 6]) + "?\nOut:"
        for i in range(len(_CORPUS_WORDS))
    ]
    learner.train_from_iterator(
        corpus, trainers.BpeTrainer(vocab_size=2000, show_progress=False, special_tokens=["<unk>", "<s>", "</s>"])
    )
    learned = json.loads(learner.to_str())["model"]
    vocab: dict[str, int] = {"<unk>": 0, "<s>": 1, "</s>": 2}
    vocab.update({f"<0x{b:02X}>": 3 + b for b in range(256)})  # Llama's byte-fallback pieces
    for piece in sorted(learned["vocab"], key=learned["vocab"].get):
        vocab.setdefault(piece, len(vocab))
    while len(vocab) < BASE_VOCAB:  # rare pieces the text never produces: the last 256 become action tokens
        vocab[f"<unused{len(vocab)}>"] = len(vocab)
    # the lone word start "▁" at Llama 2's id, which OpenVLA's predict_action appends by number
    filler = next(piece for piece, i in vocab.items() if i == SPACE_ID)
    vocab[filler], vocab[space] = vocab[space], SPACE_ID
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in learned["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizer
    tok.decoder = decoders.Sequence(
        [decoders.Replace(space, " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=2048,
        padding_side="right",
    )
    tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
    return tokenizer


def _legacy_merges(path: Path) -> None:
    """Write BPE merges as "a b" strings, the form Llama 2's published tokenizer.json has (tokenizers before
    0.20, which OpenVLA pins, reads only that form; newer ones read both)."""
    data = json.loads(path.read_text())
    data["model"]["merges"] = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2))


def _config_json(vision_backbone_id: str, text: dict, norm_stats: dict) -> dict:
    towers, size = vision_backbone(vision_backbone_id)
    return {
        "architectures": ["OpenVLAForActionPrediction"],
        "auto_map": {
            "AutoConfig": "configuration_prismatic.OpenVLAConfig",
            "AutoModelForVision2Seq": "modeling_prismatic.OpenVLAForActionPrediction",
        },
        "arch_specifier": "no-align+fused-gelu-mlp" if len(towers) == 2 else "no-align+gelu-mlp",
        "hf_llm_id": "meta-llama/Llama-2-7b-hf",
        "image_resize_strategy": "resize-naive",
        "image_sizes": [size] * len(towers),
        "llm_backbone_id": "llama2-7b-pure",
        "llm_max_length": 2048,
        "model_type": "openvla",
        "n_action_bins": OPENVLA_NUM_BINS,
        "norm_stats": norm_stats,
        "output_projector_states": False,
        "pad_to_multiple_of": PAD_TO_MULTIPLE_OF,
        "pad_token_id": BASE_VOCAB,
        "text_config": {
            "model_type": "llama",
            "pad_token_id": BASE_VOCAB,
            "torch_dtype": "bfloat16",
            "vocab_size": BASE_VOCAB + PAD_TO_MULTIPLE_OF,
            **text,
        },
        "timm_model_ids": [t.timm_id for t in towers],
        "timm_override_act_layers": [None] * len(towers),
        "torch_dtype": "bfloat16",
        "transformers_version": "4.40.1",
        "use_fused_vision_backbone": len(towers) == 2,
        "vision_backbone_id": vision_backbone_id,
    }


def _preprocessor_json(vision_backbone_id: str) -> dict:
    towers, size = vision_backbone(vision_backbone_id)
    n = len(towers)
    return {
        "auto_map": {
            "AutoImageProcessor": "processing_prismatic.PrismaticImageProcessor",
            "AutoProcessor": "processing_prismatic.PrismaticProcessor",
        },
        "image_processor_type": "PrismaticImageProcessor",
        "image_resize_strategy": "resize-naive",
        "input_sizes": [[3, size, size]] * n,
        "interpolations": ["bicubic"] * n,
        "means": [list(t.mean) for t in towers],
        "processor_class": "PrismaticProcessor",
        "stds": [list(t.std) for t in towers],
        "tvf_crop_params": [{"output_size": [size, size]}] * n,
        "tvf_do_letterbox": False,
        "tvf_letterbox_fill": None,
        "tvf_normalize_params": [{"inplace": False, "mean": list(t.mean), "std": list(t.std)} for t in towers],
        "tvf_resize_params": [{"antialias": True, "interpolation": 3, "max_size": None, "size": [size, size]}] * n,
        "use_fused_vision_backbone": n == 2,
    }


def _write(out: Path, name: str, data: dict) -> None:
    (out / name).write_text(json.dumps(data, indent=2) + "\n")


def save_checkpoint(
    out: str | Path,
    text: dict,
    *,
    vision_backbone_id: str = "dinosiglip-vit-so-224px",
    norm_stats: dict | None = None,
    seed: int = 0,
    device: str = "cpu",
    dtype: torch.dtype = torch.bfloat16,
) -> Path:
    """Build a random OpenVLA of these sizes and write every file of the checkpoint dir `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    tokenizer.save_pretrained(out)
    _legacy_merges(out / "tokenizer.json")
    tok_config = json.loads((out / "tokenizer_config.json").read_text())
    tok_config.update(
        tokenizer_class="LlamaTokenizer",
        add_bos_token=True,
        add_eos_token=False,
        processor_class="PrismaticProcessor",
        auto_map={"AutoProcessor": "processing_prismatic.PrismaticProcessor"},
    )
    _write(out, "tokenizer_config.json", tok_config)
    _write(out, "preprocessor_config.json", _preprocessor_json(vision_backbone_id))
    _write(
        out,
        "processor_config.json",
        {
            "auto_map": {"AutoProcessor": "processing_prismatic.PrismaticProcessor"},
            "processor_class": "PrismaticProcessor",
        },
    )
    config = _config_json(vision_backbone_id, text, bridge_orig_norm_stats() if norm_stats is None else norm_stats)
    _write(out, "config.json", config)
    torch.manual_seed(seed)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # built directly in `dtype`: no fp32 copy of a 7B model
    try:
        with torch.device(device):
            model = OpenVlaModel(read_architecture(out))
    finally:
        torch.set_default_dtype(default)
    _randomize_layer_scales(model)
    save_sharded({k: v.detach() for k, v in model.state_dict().items()}, out)
    return out


def _randomize_layer_scales(model: OpenVlaModel) -> None:
    """DINOv2 starts its LayerScales at 1e-5, which would leave its blocks all but silent; trained ones are
    O(0.1-1). Random values of that size make every block matter, as in a trained checkpoint."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("scale_factor"):
                p.uniform_(0.05, 0.5)


def build_test_checkpoint(out: str | Path, norm_stats: dict | None = None, seed: int = 0) -> Path:
    """Full-size vision backbone, tiny Llama: OpenVLA's real layout and key names at 1.5 GB (CPU, bf16)."""
    return save_checkpoint(out, dict(TINY_LLAMA), norm_stats=norm_stats, seed=seed)


def build_7b_shaped_checkpoint(out: str | Path, device: str = "cuda", seed: int = 0) -> Path:
    """Every OpenVLA-7B size (Llama 2 7B from LlamaConfig's defaults, as openvla-7b's text_config); ~15 GB bf16.

    Built where it runs, directly in bf16: a GPU, or a host with 16 GB of free memory."""
    return save_checkpoint(out, {}, seed=seed, device=device)
