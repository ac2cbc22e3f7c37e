"""The native OpenVLA network on a checkpoint in the published layout (full-size DINOv2 + SigLIP, tiny Llama):
the layout itself, token-for-token agreement with a plain-torch reference, and that image and instruction
both reach the action (the silent failure of OpenVLA issue 346 cannot happen)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open

from ros2_vla.policies.base import Observation
from ros2_vla.policies.openvla import OpenVlaConfig, OpenVlaPolicy
from ros2_vla.policies.openvla.backbones import TOWERS

pytestmark = pytest.mark.slow

DINO, SIGLIP = TOWERS["vit_large_patch14_reg4_dinov2.lvd142m"], TOWERS["vit_so400m_patch14_siglip_224"]


@pytest.fixture(scope="module")
def policy(openvla_checkpoint):
    torch.set_num_threads(2)
    return OpenVlaPolicy(
        OpenVlaConfig(str(openvla_checkpoint), dt=0.2, cameras=("scene",), device="cpu", quantization="fp32")
    )


@pytest.fixture(scope="module")
def weights(openvla_checkpoint):
    index = json.loads((openvla_checkpoint / "model.safetensors.index.json").read_text())["weight_map"]
    out = {}
    for name in sorted(set(index.values())):
        with safe_open(str(openvla_checkpoint / name), framework="pt") as f:
            out.update({k: f.get_tensor(k).float() for k in f.keys()})
    return out


def _frame(seed: int, size=(224, 224)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def _obs(frame: np.ndarray, instruction: str = "pick up the red cube") -> Observation:
    return Observation(stamp=0.0, images={"scene": frame}, state=np.zeros(7, np.float32), instruction=instruction)


# -- the layout: OpenVLA-7B's key names and shapes (vision and projector), its config fields and files --

EXPECTED_SHAPES = {
    "vision_backbone.featurizer.patch_embed.proj.weight": (1024, 3, 14, 14),
    "vision_backbone.featurizer.pos_embed": (1, 256, 1024),
    "vision_backbone.featurizer.cls_token": (1, 1, 1024),
    "vision_backbone.featurizer.reg_token": (1, 4, 1024),
    "vision_backbone.featurizer.blocks.23.attn.qkv.weight": (3072, 1024),
    "vision_backbone.featurizer.blocks.0.mlp.fc1.weight": (4096, 1024),
    "vision_backbone.featurizer.blocks.0.ls1.scale_factor": (1024,),
    "vision_backbone.featurizer.blocks.0.ls2.scale_factor": (1024,),
    "vision_backbone.featurizer.norm.weight": (1024,),
    "vision_backbone.fused_featurizer.patch_embed.proj.weight": (1152, 3, 14, 14),
    "vision_backbone.fused_featurizer.pos_embed": (1, 256, 1152),
    "vision_backbone.fused_featurizer.blocks.26.attn.qkv.weight": (3456, 1152),
    "vision_backbone.fused_featurizer.blocks.0.mlp.fc1.weight": (4304, 1152),
    "vision_backbone.fused_featurizer.attn_pool.latent": (1, 1, 1152),
    "vision_backbone.fused_featurizer.attn_pool.kv.weight": (2304, 1152),
    "projector.fc1.weight": (8704, 2176),
    "projector.fc2.weight": (64, 8704),  # 4096 in the 7B model: the LLM's width
    "projector.fc3.weight": (64, 64),
    "language_model.model.embed_tokens.weight": (32064, 64),
    "language_model.lm_head.weight": (32064, 64),
}


def test_the_checkpoint_has_openvlas_files_keys_shapes_and_config(openvla_checkpoint, weights):
    for name in (
        "config.json",
        "model.safetensors.index.json",
        "preprocessor_config.json",
        "processor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ):
        assert (openvla_checkpoint / name).is_file(), name
    assert len(list(openvla_checkpoint.glob("model-0000?-of-0000?.safetensors"))) >= 2  # sharded, as published
    for key, shape in EXPECTED_SHAPES.items():
        assert tuple(weights[key].shape) == shape, key
    blocks = {k.split(".")[3] for k in weights if k.startswith("vision_backbone.featurizer.blocks.")}
    fused_blocks = {k.split(".")[3] for k in weights if k.startswith("vision_backbone.fused_featurizer.blocks.")}
    assert len(blocks) == 24 and len(fused_blocks) == 27
    assert not any("gamma" in k for k in weights)  # OpenVLA renames timm's LayerScale gamma
    assert sum(v.numel() for k, v in weights.items() if k.startswith("vision_backbone.")) > 0.7e9
    config = json.loads((openvla_checkpoint / "config.json").read_text())
    assert config["model_type"] == "openvla" and config["architectures"] == ["OpenVLAForActionPrediction"]
    assert config["vision_backbone_id"] == "dinosiglip-vit-so-224px" and config["llm_backbone_id"] == "llama2-7b-pure"
    assert config["timm_model_ids"] == ["vit_large_patch14_reg4_dinov2.lvd142m", "vit_so400m_patch14_siglip_224"]
    assert config["arch_specifier"] == "no-align+fused-gelu-mlp" and config["use_fused_vision_backbone"] is True
    assert (config["pad_to_multiple_of"], config["pad_token_id"], config["n_action_bins"]) == (64, 32000, 256)
    assert config["text_config"]["vocab_size"] == 32064
    assert set(config["norm_stats"]["bridge_orig"]["action"]) >= {"q01", "q99", "mask"}
    tokens = json.loads((openvla_checkpoint / "tokenizer_config.json").read_text())
    assert tokens["tokenizer_class"] == "LlamaTokenizer" and tokens["pad_token"] == "<PAD>"


def test_the_tokenizer_has_llamas_layout(policy):
    tok = policy.processor.tokenizer
    assert tok.convert_tokens_to_ids(["<unk>", "<s>", "</s>", "<0x00>", "\u2581", "<PAD>"]) == [
        0,
        1,
        2,
        3,
        29871,
        32000,
    ]
    ids = tok("In: What action should the robot take to pick up the red cube?\nOut:").input_ids
    assert ids[0] == 1 and max(ids) < 31744  # text never produces the last 256 ids (the action tokens)


# -- a plain-torch reference from the same weights: no cache, every step recomputed from scratch --


def _layer_norm(x, w, b):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + 1e-6) * w + b


def _attention(x, qkv_w, qkv_b, proj_w, proj_b, heads):
    n, c = x.shape
    q, k, v = (x @ qkv_w.T + qkv_b).reshape(n, 3, heads, c // heads).permute(1, 2, 0, 3)
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(c // heads), dim=-1)
    return (weights @ v).transpose(0, 1).reshape(n, c) @ proj_w.T + proj_b


def _tower(w, p, spec, pixels):
    x = F.conv2d(pixels[None], w[p + "patch_embed.proj.weight"], w[p + "patch_embed.proj.bias"], stride=spec.patch)
    x = x[0].flatten(1).T + w[p + "pos_embed"][0]
    prefix = [w[p + "cls_token"][0]] if spec.class_token else []
    prefix += [w[p + "reg_token"][0]] if spec.registers else []
    x = torch.cat([*prefix, x])
    for i in range(spec.depth - 1):  # through the second-to-last block
        b = f"{p}blocks.{i}."
        scale1 = w[b + "ls1.scale_factor"] if spec.layer_scale else 1.0
        scale2 = w[b + "ls2.scale_factor"] if spec.layer_scale else 1.0
        h = _layer_norm(x, w[b + "norm1.weight"], w[b + "norm1.bias"])
        x = x + scale1 * _attention(
            h,
            w[b + "attn.qkv.weight"],
            w[b + "attn.qkv.bias"],
            w[b + "attn.proj.weight"],
            w[b + "attn.proj.bias"],
            spec.heads,
        )
        h = _layer_norm(x, w[b + "norm2.weight"], w[b + "norm2.bias"])
        m = F.gelu(h @ w[b + "mlp.fc1.weight"].T + w[b + "mlp.fc1.bias"]) @ w[b + "mlp.fc2.weight"].T
        x = x + scale2 * (m + w[b + "mlp.fc2.bias"])
    return x[spec.prefix_tokens :]


def _rms(x, weight, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * weight


def _rotate(x, positions, theta=10000.0):
    half = x.shape[-1] // 2
    freqs = positions[:, None] / theta ** (torch.arange(0, 2 * half, 2, dtype=torch.float32) / (2 * half))
    cos, sin = torch.cat([freqs, freqs], -1).cos(), torch.cat([freqs, freqs], -1).sin()
    return x * cos[:, None] + torch.cat([-x[..., half:], x[..., :half]], -1) * sin[:, None]


def _llama_last_logits(w, x, cfg):
    t, heads = x.shape[0], cfg["num_attention_heads"]
    hd, eps = x.shape[1] // heads, cfg["rms_norm_eps"]
    positions = torch.arange(t, dtype=torch.float32)
    causal = torch.full((t, t), float("-inf")).triu(1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"language_model.model.layers.{i}."
        h = _rms(x, w[p + "input_layernorm.weight"], eps)
        q, k, v = ((h @ w[p + f"self_attn.{n}_proj.weight"].T).reshape(t, heads, hd) for n in "qkv")
        q, k = _rotate(q, positions).transpose(0, 1), _rotate(k, positions).transpose(0, 1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + causal, -1) @ v.transpose(0, 1)
        x = x + att.transpose(0, 1).reshape(t, -1) @ w[p + "self_attn.o_proj.weight"].T
        h = _rms(x, w[p + "post_attention_layernorm.weight"], eps)
        x = (
            x
            + (F.silu(h @ w[p + "mlp.gate_proj.weight"].T) * (h @ w[p + "mlp.up_proj.weight"].T))
            @ w[p + "mlp.down_proj.weight"].T
        )
    return _rms(x[-1], w["language_model.model.norm.weight"], eps) @ w["language_model.lm_head.weight"].T


def _reference_ids(w, cfg, frame, prompt_ids, steps=7):
    x = torch.from_numpy(frame).float().permute(2, 0, 1) / 255.0  # 224x224: OpenVLA's resize is the identity
    dino = (x - torch.tensor(DINO.mean)[:, None, None]) / torch.tensor(DINO.std)[:, None, None]
    sig = (x - torch.tensor(SIGLIP.mean)[:, None, None]) / torch.tensor(SIGLIP.std)[:, None, None]
    features = torch.cat(
        [
            _tower(w, "vision_backbone.featurizer.", DINO, dino),
            _tower(w, "vision_backbone.fused_featurizer.", SIGLIP, sig),
        ],
        dim=1,
    )
    h = F.gelu(features @ w["projector.fc1.weight"].T + w["projector.fc1.bias"])
    h = F.gelu(h @ w["projector.fc2.weight"].T + w["projector.fc2.bias"])
    patches = h @ w["projector.fc3.weight"].T + w["projector.fc3.bias"]
    embed = w["language_model.model.embed_tokens.weight"]
    seq = torch.cat([embed[prompt_ids[:1]], patches, embed[prompt_ids[1:]]])
    out = []
    for _ in range(steps):
        logits = _llama_last_logits(w, seq, cfg)
        token = 31744 + int(torch.argmax(logits[31744:32000]))  # the 256 action ids
        out.append(token)
        seq = torch.cat([seq, embed[token][None]])
    return out


def test_fp32_tokens_equal_a_plain_torch_reference(policy, weights, openvla_checkpoint):
    cfg = json.loads((openvla_checkpoint / "config.json").read_text())["text_config"]
    for seed, instruction in ((1, "pick up the red cube"), (2, "open the drawer")):
        frame = _frame(seed)
        inputs = policy.encode(_obs(frame, instruction))
        ids = policy.generate_ids(inputs)
        with torch.no_grad():
            expected = _reference_ids(weights, cfg, frame, inputs["input_ids"][0])
        assert ids.tolist() == expected


# -- what reaches the action --


def test_the_image_alone_changes_the_action(policy):
    actions = {tuple(policy.infer(_obs(_frame(seed, (240, 320)))).tokens[0]) for seed in (10, 11, 12)}
    assert len(actions) == 3


def test_the_instruction_alone_changes_the_action(policy):
    frame = _frame(20, (240, 320))
    actions = {
        tuple(policy.infer(_obs(frame, text)).tokens[0])
        for text in ("pick up the red cube", "open the drawer", "put the spoon in the bowl")
    }
    assert len(actions) == 3


def test_prefill_logits_depend_on_a_single_patch(policy):
    """The cached decoding reads the image: perturbing one corner of the frame moves the first step's scores."""
    frame = _frame(30)
    a = policy.encode(_obs(frame))
    frame2 = frame.copy()
    frame2[:14, :14] = 255 - frame2[:14, :14]  # one 14 px patch
    b = policy.encode(_obs(frame2))
    with torch.no_grad():
        la = policy.model.prefill(a["input_ids"], a["pixel_values"]).logits
        lb = policy.model.prefill(b["input_ids"], b["pixel_values"]).logits
    assert not torch.allclose(la, lb)


def test_towers_equal_timm_where_timm_imports(weights):
    """Where timm (and the torchvision it imports) can load, the towers give timm's own features exactly."""
    timm = pytest.importorskip(
        "timm", reason="timm needs torchvision, whose PyPI builds do not load beside a CPU torch"
    )
    from ros2_vla.policies.openvla.vit import VisionTower

    pixels = torch.randn(1, 3, 224, 224)
    for prefix, spec in (("vision_backbone.featurizer.", DINO), ("vision_backbone.fused_featurizer.", SIGLIP)):
        ours = VisionTower(spec, 224).eval()
        ours.load_state_dict({k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)})
        ref = timm.create_model(spec.timm_id, pretrained=False, num_classes=0, img_size=224, act_layer=None).eval()
        ref.load_state_dict(
            {k[len(prefix) :].replace("scale_factor", "gamma"): v for k, v in weights.items() if k.startswith(prefix)}
        )
        with torch.no_grad():
            expected = ref.get_intermediate_layers(pixels, n={len(ref.blocks) - 2})[0]
            assert torch.allclose(ours(pixels), expected, atol=1e-5)
