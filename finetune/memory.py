"""Per-device GPU memory of a fine-tuning run, as pure functions of the model shape and the setup.

Nothing here reads files or imports torch, so every number can be checked by hand and the planner
(`finetune/plan.py`) stays a thin layer of I/O on top. All sizes are bytes; `GIB` converts.

The estimate splits memory the way a user reasons about it:

* weights      - base model (maybe 4-bit) + trainable params, after FSDP/ZeRO-3 sharding
* gradients    - one per trainable param, in the trainable param's dtype, after ZeRO-2/FSDP sharding
* optimizer    - optimizer states (+ fp32 master weights for DeepSpeed), after ZeRO-1+/FSDP sharding
* activations  - what autograd saves for backward at `per_device_train_batch_size x max_length`
                 tokens, plus the loss's logits
* overhead     - CUDA context, allocator fragmentation, dequantization and all-gather buffers

and reports the larger of two moments of a training step, because the parts do not peak together:
at the end of the forward pass all activations are alive but gradients are not (unless gradient
accumulation keeps last micro-batch's), and at the end of backward all gradients are alive but the
activations are freed. Summing both, as many calculators do, over-counts full fine-tuning, where
both are large. The step modelled is SFT's: one model, one forward and backward per micro-batch.

Formulas and their sources are in each function's docstring. The per-layer activation counts were
derived by listing what autograd saves in transformers 5.23's `LlamaDecoderLayer` and checked against
`torch.autograd.graph.saved_tensors_hooks` on a tiny model (`tests/test_memory_plan.py`), in the style
of Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models" (their
34*s*b*h + 5*a*s^2*b per layer is for GPT-3's MLP and dropout; Llama's SwiGLU, RMSNorm and GQA give
different constants, and SDPA/flash attention removes their s^2 term).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from corral.errors import CorralError

GIB = 2**30

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}

# bitsandbytes Linear4bit quantizes in blocks of 64 weights, one fp32 absmax per block. With
# "double quantization" (QLoRA paper, Dettmers et al. 2023, section 3) the absmax values are
# themselves quantized to 8 bit in blocks of 256 with one fp32 constant each.
NF4_BLOCK = 64
NF4_DOUBLE_QUANT_BLOCK = 256

# bitsandbytes' 8-bit optimizers keep each state in 8 bit with one fp32 absmax per 256 values
# (`bitsandbytes/optim/optimizer.py`, blocksize = 256).
BNB_8BIT_BLOCK = 256

CUDA_CONTEXT_BYTES = 0.5 * GIB  # what nvidia-smi shows for an idle PyTorch process: ~0.3-0.6 GiB
FRAGMENTATION = 0.05  # caching-allocator slack on top of live tensors, assumed


class PlanError(CorralError, ValueError):
    """A setup the estimator cannot model; the message says which value and what is supported."""


# --------------------------------------------------------------------------------------------
# Model shape


@dataclass(frozen=True)
class ModelShape:
    """The hyperparameters of a Llama-family decoder that decide its size.

    `intermediate_size` is the width of the dense SwiGLU MLP. For Llama 4 MoE layers
    `expert_intermediate_size` is the width of each routed expert and of the shared expert,
    `moe_layers` lists which layers are MoE (the others use the dense MLP) and `qk_norm_layers` the
    layers that apply RoPE and an fp32 L2 norm to queries and keys.
    """

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    tie_word_embeddings: bool
    attention_bias: bool = False
    mlp_bias: bool = False
    num_experts: int = 0
    experts_per_token: int = 0
    expert_intermediate_size: int = 0
    moe_layers: tuple[int, ...] = ()
    qk_norm_layers: tuple[int, ...] = ()
    family: str = "llama"  # "llama" (Llama 2/3) or "llama4"
    name: str = ""

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def q_dim(self) -> int:
        return self.num_heads * self.head_dim

    def is_moe(self, layer: int) -> bool:
        return layer in self.moe_layers


def model_shape_from_config(config: dict, name: str = "") -> ModelShape:
    """Read a transformers `config.json` (as a dict) of model_type `llama`, `llama4_text` or `llama4`.

    For `llama4` (the multimodal checkpoint) only `text_config` is used: the vision tower is not
    fine-tuned by corral's recipes. Llama 4 layer `i` is MoE when `i` is in `moe_layers`, or, as
    transformers computes it, when `(i + 1) % interleave_moe_layer_step == 0`.
    """
    if config.get("model_type") == "llama4" and "text_config" in config:
        config = config["text_config"]
    model_type = config.get("model_type")
    if model_type not in ("llama", "llama4_text"):
        raise PlanError(f"model_type {model_type!r} is not modelled; the planner knows 'llama' and 'llama4_text'")
    heads = config["num_attention_heads"]
    hidden = config["hidden_size"]
    common = dict(
        vocab_size=config["vocab_size"],
        hidden_size=hidden,
        num_layers=config["num_hidden_layers"],
        num_heads=heads,
        num_kv_heads=config.get("num_key_value_heads") or heads,
        head_dim=config.get("head_dim") or hidden // heads,
        tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
        attention_bias=bool(config.get("attention_bias", False)),
        name=name,
    )
    if model_type == "llama":
        return ModelShape(intermediate_size=config["intermediate_size"],
                          mlp_bias=bool(config.get("mlp_bias", False)), **common)
    layers = config["num_hidden_layers"]
    moe_layers = config.get("moe_layers")
    if moe_layers is None:
        step = config.get("interleave_moe_layer_step", 1)
        moe_layers = range(step - 1, layers, step)
    interval = config.get("no_rope_layer_interval", 4)
    rope = config.get("no_rope_layers") or [int((i + 1) % interval != 0) for i in range(layers)]
    qk_norm = [i for i in range(layers) if rope[i]] if config.get("use_qk_norm", True) else []
    return ModelShape(
        intermediate_size=config.get("intermediate_size_mlp", 16384),
        num_experts=config["num_local_experts"],
        experts_per_token=config.get("num_experts_per_tok", 1),
        expert_intermediate_size=config["intermediate_size"],
        moe_layers=tuple(moe_layers),
        qk_norm_layers=tuple(qk_norm),
        family="llama4",
        **common,
    )


@dataclass(frozen=True)
class Linear:
    """One `nn.Linear` of a decoder layer: what LoRA can target and bitsandbytes quantizes.

    `path` is the module path inside the layer, as PEFT matches it. `quantizable` is False for
    Llama 4's router, a subclass of nn.Linear that transformers' `replace_with_bnb_linear` skips
    (it converts `type(module) is nn.Linear` only).
    """

    path: str
    in_features: int
    out_features: int
    bias: bool = False
    quantizable: bool = True

    @property
    def weight_numel(self) -> int:
        return self.in_features * self.out_features


def layer_linears(shape: ModelShape, layer: int) -> list[Linear]:
    """Every nn.Linear inside decoder layer `layer`."""
    h, ab = shape.hidden_size, shape.attention_bias
    out = [
        Linear("self_attn.q_proj", h, shape.q_dim, ab),
        Linear("self_attn.k_proj", h, shape.kv_dim, ab),
        Linear("self_attn.v_proj", h, shape.kv_dim, ab),
        Linear("self_attn.o_proj", shape.q_dim, h, ab),
    ]
    if not shape.num_experts:
        i, mb = shape.intermediate_size, shape.mlp_bias
        return out + [Linear("mlp.gate_proj", h, i, mb), Linear("mlp.up_proj", h, i, mb),
                      Linear("mlp.down_proj", i, h, mb)]
    if not shape.is_moe(layer):
        i = shape.intermediate_size
        return out + [Linear("feed_forward.gate_proj", h, i), Linear("feed_forward.up_proj", h, i),
                      Linear("feed_forward.down_proj", i, h)]
    ie = shape.expert_intermediate_size
    return out + [
        Linear("feed_forward.router", h, shape.num_experts, quantizable=False),
        Linear("feed_forward.shared_expert.gate_proj", h, ie),
        Linear("feed_forward.shared_expert.up_proj", h, ie),
        Linear("feed_forward.shared_expert.down_proj", ie, h),
    ]


def all_linears(shape: ModelShape) -> list[Linear]:
    """The linears of every decoder layer, one entry per layer and module."""
    return [lin for layer in range(shape.num_layers) for lin in layer_linears(shape, layer)]


def layer_parameter_count(shape: ModelShape, layer: int) -> int:
    """Weights of one decoder layer: its linears, routed experts and two RMSNorms (what FSDP and
    ZeRO-3 all-gather as one unit)."""
    experts = 3 * shape.num_experts * shape.hidden_size * shape.expert_intermediate_size if shape.is_moe(layer) else 0
    linears = sum(lin.weight_numel + (lin.out_features if lin.bias else 0) for lin in layer_linears(shape, layer))
    return linears + experts + 2 * shape.hidden_size


def expert_parameter_count(shape: ModelShape) -> int:
    """Routed-expert weights of all MoE layers: `gate_up_proj` [E, h, 2*ie] + `down_proj` [E, ie, h].

    They are `nn.Parameter`s of `Llama4TextExperts`, not nn.Linear, so LoRA's module targets and
    bitsandbytes' 4-bit conversion both pass them by: in a QLoRA run they stay in the load dtype.
    """
    return len(shape.moe_layers) * 3 * shape.num_experts * shape.hidden_size * shape.expert_intermediate_size


def embedding_parameter_count(shape: ModelShape) -> int:
    """`embed_tokens` plus `lm_head` (one matrix when tied)."""
    return shape.vocab_size * shape.hidden_size * (1 if shape.tie_word_embeddings else 2)


def parameter_count(shape: ModelShape) -> int:
    """Exact `sum(p.numel() for p in model.parameters())` of LlamaForCausalLM / Llama4ForCausalLM.

    Per layer: the linears (+ biases), two RMSNorm weights of `hidden_size`; plus the embeddings,
    the final norm and, for MoE, the routed experts. Llama 4's QK-norm is an L2 norm with no weight.
    """
    layers = sum(layer_parameter_count(shape, i) for i in range(shape.num_layers))
    return layers + shape.hidden_size + embedding_parameter_count(shape)


def active_parameter_count(shape: ModelShape) -> int:
    """Parameters a token passes through: all but the `E - k` unrouted experts of each MoE layer."""
    if not shape.num_experts:
        return parameter_count(shape)
    unused = shape.num_experts - shape.experts_per_token
    per_expert = 3 * shape.hidden_size * shape.expert_intermediate_size
    return parameter_count(shape) - len(shape.moe_layers) * unused * per_expert


def _matches(path: str, target: str) -> bool:
    # PEFT's rule for a list of names: the module's name equals the target or ends with "." + target.
    return path == target or path.endswith("." + target)


def lora_targets(shape: ModelShape, target_modules, layer: int | None = None) -> list[Linear]:
    """The linears a LoRA config adapts, in one decoder layer, or (layer=None) in the whole model.

    `target_modules` is PEFT's: "all-linear" (every nn.Linear except the output layer, so the Llama 4
    router too), or a list of names matched as module-path suffixes. `lm_head` is adapted only when
    named. Resolving `None` to PEFT's per-architecture default is the caller's job.
    """
    linears = all_linears(shape) if layer is None else layer_linears(shape, layer)
    head = [Linear("lm_head", shape.hidden_size, shape.vocab_size)] if layer is None else []
    if target_modules == "all-linear":
        return linears
    if isinstance(target_modules, str):
        target_modules = [target_modules]
    chosen = [lin for lin in linears + head if any(_matches(lin.path, t) for t in target_modules)]
    if not chosen and layer is None:
        names = sorted({lin.path.rsplit(".", 1)[-1] for lin in linears})
        raise PlanError(f"lora_target_modules {list(target_modules)} match no linear layer; names here: {names}")
    return chosen


def lora_parameter_count(shape: ModelShape, r: int, target_modules, use_dora: bool = False) -> int:
    """LoRA adds A [r, in] and B [out, r] to each adapted linear: r * (in + out) per layer (Hu et al.
    2021); DoRA adds a magnitude vector of `out` (Liu et al. 2024)."""
    return sum(r * (lin.in_features + lin.out_features) + (lin.out_features if use_dora else 0)
               for lin in lora_targets(shape, target_modules))


# --------------------------------------------------------------------------------------------
# Bytes per parameter


def quantized_bytes_per_param(bits: int, double_quant: bool) -> float:
    """Storage of one bitsandbytes-quantized weight.

    4 bit (NF4/FP4): 0.5 byte + one fp32 absmax per 64 weights (4/64 = 0.0625), or with double
    quantization one int8 absmax per 64 plus one fp32 per 64*256 (1/64 + 4/16384 = 0.0159).
    8 bit (LLM.int8, Dettmers et al. 2022): 1 byte; its one fp32 scale per output row is < 0.1% and
    is left out.
    """
    if bits == 8:
        return 1.0
    if double_quant:
        return 0.5 + 1 / NF4_BLOCK + 4 / (NF4_BLOCK * NF4_DOUBLE_QUANT_BLOCK)
    return 0.5 + 4 / NF4_BLOCK


@dataclass(frozen=True)
class OptimizerSpec:
    """Optimizer state per trainable parameter. `states` full-precision tensors follow the master
    dtype (torch keeps `exp_avg`/`exp_avg_sq` in the parameter's dtype); `fixed_bytes` are states
    whose size does not depend on it (8-bit, or bitsandbytes' 32-bit states which are always fp32).
    `paged` states live in CUDA unified memory, which the driver evicts to CPU RAM under pressure."""

    states: int = 0
    fixed_bytes: float = 0.0
    paged: bool = False
    approximate: bool = False


_EIGHT_BIT = 1 + 4 / BNB_8BIT_BLOCK  # one 8-bit state with its blockwise fp32 absmax
OPTIMIZERS = {
    "adamw_torch": OptimizerSpec(states=2),
    "adamw_torch_fused": OptimizerSpec(states=2),
    "adamw_anyprecision": OptimizerSpec(states=2),
    "adamw_bnb_8bit": OptimizerSpec(fixed_bytes=2 * _EIGHT_BIT),
    "adamw_8bit": OptimizerSpec(fixed_bytes=2 * _EIGHT_BIT),
    "adamw_torch_8bit": OptimizerSpec(fixed_bytes=2 * _EIGHT_BIT),
    "adamw_torch_4bit": OptimizerSpec(fixed_bytes=1.0, approximate=True),
    "paged_adamw_8bit": OptimizerSpec(fixed_bytes=2 * _EIGHT_BIT, paged=True),
    "paged_adamw_32bit": OptimizerSpec(fixed_bytes=8, paged=True),
    "lion_32bit": OptimizerSpec(fixed_bytes=4),
    "lion_8bit": OptimizerSpec(fixed_bytes=_EIGHT_BIT),
    "paged_lion_32bit": OptimizerSpec(fixed_bytes=4, paged=True),
    "paged_lion_8bit": OptimizerSpec(fixed_bytes=_EIGHT_BIT, paged=True),
    "rmsprop": OptimizerSpec(states=1),
    "sgd": OptimizerSpec(),  # transformers builds torch SGD with momentum 0: no state
    # Adafactor factors the second moment into row and column vectors and keeps no first moment:
    # O(rows + cols) per matrix, which rounds to zero next to the weights.
    "adafactor": OptimizerSpec(approximate=True),
}


def optimizer_bytes_per_param(optim: str, master_bytes: int) -> OptimizerSpec:
    """Look up `optim` (a transformers `OptimizerNames` value) and return its resolved spec with
    `fixed_bytes` holding the total bytes per trainable parameter.

    AdamW keeps two states (Loshchilov & Hutter 2019): 8 bytes per param in fp32, 4 in bf16 when the
    params themselves are bf16 (torch allocates states `zeros_like(param)`). 8-bit AdamW (Dettmers et
    al. 2022, "8-bit Optimizers via Block-wise Quantization") keeps both in int8: ~2 bytes.
    """
    spec = OPTIMIZERS.get(optim)
    if spec is None:
        raise PlanError(f"optim {optim!r} is not modelled; known: {', '.join(sorted(OPTIMIZERS))}")
    return dataclasses.replace(spec, states=0, fixed_bytes=spec.fixed_bytes + spec.states * master_bytes)


# --------------------------------------------------------------------------------------------
# Activations


def layer_activation_bytes_per_token(shape: ModelShape, layer: int, *, base_trainable: bool,
                                     lora_in_features: list[int] = (), lora_r: int = 0,
                                     compute_bytes: int = 2, fp32_weights_autocast: bool = False,
                                     eager_attention_seq: int = 0) -> float:
    """Bytes autograd saves per token in one decoder layer during the forward pass.

    Derived from transformers' LlamaDecoderLayer with SDPA attention (no s^2 term), c = bytes of the
    compute dtype, h hidden, kv = num_kv_heads*head_dim, I the MLP width, nh heads:

      each RMSNorm (x.float(), x*rsqrt, weight*x): fp32 input 4h + fp32 rstd 4
        + c*h normalized input saved for the weight's gradient           (only if norms train)
      attention: c*h input of q/k/v (if they train) + q, k, v after RoPE c*(h + 2kv)
        + output c*h + fp32 logsumexp 4*nh
      MLP: c*h input of gate/up (if they train) + gate, silu(gate), up c*3I
        + input of down_proj c*I (if it trains)

    so a fully trained layer saves 20h + 4kv + 8I + 4nh + 8 bytes in bf16 and a frozen one (LoRA)
    12h + 4kv + 6I + 4nh + 8: a frozen linear needs only its weight for the input gradient. Each
    LoRA-adapted linear adds its input once more and lora_A's output: c*(in + r). With fp32 weights
    under bf16 autocast (TRL's default dtype) the norms keep fp32 outputs and each trainable linear
    saves its own bf16 cast of the input, which measures as 30h + 4kv + 8I + 4nh + 8.

    Llama 4: layers with QK-norm save fp32 q and k and their rsqrt, 4*(q_dim + kv) + 4*(nh + nkv).
    Its MoE layers send every token through every expert (transformers' Llama4TextMoe scales the
    input by a sigmoid router score that is zero for unrouted experts), so the routed part is E
    times a dense expert MLP of width `expert_intermediate_size`; plus the shared expert, the router
    logits (4E), routing scores (cE) and top-k indices (8k).
    `eager_attention_seq` (the sequence length, for attn_implementation "eager") adds the saved
    attention probabilities, fp32 and compute dtype: (4 + c) bytes per head per key.
    """
    c = compute_bytes
    h, kv, nh = shape.hidden_size, shape.kv_dim, shape.num_heads
    t = 1 if base_trainable else 0
    if fp32_weights_autocast and base_trainable:
        # Norm outputs stay fp32 (4h each, for the weight gradient) and q, k, v, gate, up each save
        # their own bf16 cast of the input instead of sharing one tensor.
        norms = 2 * (4 * h + 4) + 2 * 4 * h
        attn = c * (3 * h) + c * (h + 2 * kv) + c * h + 4 * nh
        mlp_in = c * (2 * h)
    else:
        norms = 2 * (4 * h + 4) + t * 2 * c * h
        attn = t * c * h + c * (h + 2 * kv) + c * h + 4 * nh
        mlp_in = t * c * h
    if eager_attention_seq:
        # fp32 softmax and its cast, per head per key; GQA keys/values repeated to nh heads; no
        # logsumexp; the output is saved only as o_proj's input
        attn += (4 + c) * nh * eager_attention_seq - 4 * nh + 2 * c * (shape.q_dim - kv) - (1 - t) * c * h
    if layer in shape.qk_norm_layers:
        attn += 4 * (shape.q_dim + kv) + 4 * (nh + shape.num_kv_heads)
    if shape.is_moe(layer):
        ie, e = shape.expert_intermediate_size, shape.num_experts
        # per routed (token, expert): the repeated and the score-scaled input (c*2h, c*h of it only
        # if the experts train) and the expert MLP; then the shared expert as a dense MLP.
        routed = c * h + t * c * h + c * 3 * ie + t * c * ie
        mlp = mlp_in + e * routed + c * 3 * ie + t * c * ie + (4 + c) * e + 8 * shape.experts_per_token
    else:
        i = shape.intermediate_size
        mlp = mlp_in + c * 3 * i + t * c * i
    lora = sum(c * (fin + lora_r) for fin in lora_in_features)
    return norms + attn + mlp + lora


def logits_bytes_per_token(shape: ModelShape, loss_impl: str, compute_bytes: int = 2) -> float:
    """Peak bytes per token around the loss.

    "hf" (transformers' ForCausalLMLoss): the compute-dtype logits, their fp32 upcast and
    cross-entropy's fp32 log-softmax, all alive at once: (c + 4 + 4) * vocab.
    "chunked" (torchtune's CEWithChunkedOutputLoss, 8 chunks): compute-dtype logits plus one chunk's
    fp32 copies: (c + 8/8) * vocab.
    "fused" (Liger's fused linear cross-entropy, `use_liger_kernel`): logits never materialized;
    counted as 0.
    """
    v = shape.vocab_size
    if loss_impl == "hf":
        return (compute_bytes + 8) * v
    if loss_impl == "chunked":
        return (compute_bytes + 1) * v
    if loss_impl == "fused":
        return 0.0
    raise PlanError(f"loss_impl {loss_impl!r} is not modelled; choose 'hf', 'chunked' or 'fused'")


# --------------------------------------------------------------------------------------------
# Training setup and the estimate


@dataclass(frozen=True)
class Sharding:
    """How the accelerate config spreads state over `num_processes` devices.

    kind: "single", "ddp", "fsdp" or "zero". For "fsdp", `reshard_after_forward=False` (FSDP1's
    SHARD_GRAD_OP) keeps the gathered weights through backward, so weights count unsharded at peak.
    `offload_params` (FSDP) moves sharded params, grads and optimizer step to CPU; for ZeRO,
    `offload_optimizer` moves master weights, optimizer states and gradients (ZeRO-Offload, Ren et al.
    2021) and `offload_params` (stage 3) the bf16 params.
    """

    kind: str = "single"
    num_processes: int = 1
    zero_stage: int = 0
    reshard_after_forward: bool = True
    offload_params: bool = False
    offload_optimizer: bool = False
    fsdp_version: int = 2
    mixed_precision: str = "no"
    activation_checkpointing: bool = False  # fsdp_activation_checkpointing

    def __post_init__(self):
        if self.kind not in ("single", "ddp", "fsdp", "zero"):
            raise PlanError(f"sharding kind {self.kind!r}: expected single, ddp, fsdp or zero")
        if self.num_processes < 1:
            raise PlanError(f"num_processes must be >= 1, got {self.num_processes}")


@dataclass(frozen=True)
class TrainingSetup:
    """Everything the estimate depends on; field names follow TRL/transformers/PEFT.

    `weights_dtype` is the dtype the model is loaded in (TRL's `dtype`); `bf16` turns on bf16
    autocast. `lora_dtype` is the adapters' dtype: PEFT upcasts them to float32 by default
    (`autocast_adapter_dtype=True`). `optimizer_in_backward` (torchtune's `optimizer_in_bwd`; not
    available in the HF Trainer) steps each parameter as soon as its gradient exists, so at most one
    gradient is alive. `bnb_4bit_quant_storage` matters under FSDP only: accelerate shards 4-bit
    weights stored in a float dtype and leaves the default uint8 ones whole on every device.
    `loss_impl` is "hf", "chunked" or "fused" (see `logits_bytes_per_token`).
    """

    shape: ModelShape
    per_device_train_batch_size: int
    max_length: int
    gradient_accumulation_steps: int = 1
    gradient_checkpointing: bool = True
    weights_dtype: str = "bfloat16"
    bf16: bool = True
    use_peft: bool = False
    lora_r: int = 16
    lora_target_modules: object = ("q_proj", "v_proj")
    use_dora: bool = False
    lora_dtype: str = "float32"
    load_in_4bit: bool = False
    load_in_8bit: bool = False
    double_quant: bool = False
    bnb_4bit_quant_storage: str | None = None
    optim: str = "adamw_torch"
    optimizer_in_backward: bool = False
    loss_impl: str = "hf"
    attn_implementation: str = "sdpa"
    sharding: Sharding = field(default_factory=Sharding)

    def __post_init__(self):
        for key in ("weights_dtype", "lora_dtype"):
            if getattr(self, key) not in DTYPE_BYTES:
                raise PlanError(f"{key} {getattr(self, key)!r}: expected one of {sorted(DTYPE_BYTES)}")
        if (self.load_in_4bit or self.load_in_8bit) and not self.use_peft:
            raise PlanError("load_in_4bit/load_in_8bit train adapters only: set use_peft: true")
        if self.per_device_train_batch_size < 1 or self.max_length < 1:
            raise PlanError("per_device_train_batch_size and max_length must be positive")


@dataclass
class MemoryEstimate:
    """Bytes per device at the peak moment, split by kind, plus what lives elsewhere."""

    weights: float
    gradients: float
    optimizer: float
    activations: float
    overhead: float
    peak_phase: str
    params: int
    trainable_params: int
    paged_optimizer: float = 0.0  # in CUDA unified memory; spills to CPU instead of failing
    cpu_offloaded: float = 0.0  # per process, in host RAM
    activations_detail: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations + self.overhead


def _precision(setup: TrainingSetup) -> tuple[int, int, int, int, int]:
    """Bytes per param of: frozen weights, trainable weights, gradients, optimizer master dtype,
    extra fp32 master copy.

    - LoRA adapters are `lora_dtype`; full fine-tuning trains the weights in their load dtype.
    - DeepSpeed with bf16/fp16 casts the model to 16 bit and keeps an fp32 master copy plus fp32
      states in the optimizer: 2 + 2 + (4 + 8) bytes, the 16 bytes/param of the ZeRO paper
      (Rajbhandari et al. 2020).
    - accelerate's FSDP2 with mixed precision upcasts trainable params to fp32 before sharding
      (`fsdp2_prepare_model`, skipped when the model holds 4-bit params), so they, their gradients
      and the AdamW states are fp32.
    """
    sh = setup.sharding
    load = DTYPE_BYTES[setup.weights_dtype]
    trainable = DTYPE_BYTES[setup.lora_dtype] if setup.use_peft else load
    mixed = setup.bf16 or sh.mixed_precision in ("bf16", "fp16")
    if sh.kind == "zero" and mixed:
        return 2, 2, 2, 4, 4
    if sh.kind == "fsdp" and sh.fsdp_version == 2 and mixed and not setup.load_in_4bit:
        trainable = 4
    return load, trainable, trainable, trainable, 0


def _compute_bytes(setup: TrainingSetup) -> int:
    """Bytes of one activation element: 2 under bf16 autocast or 16-bit weights, else 4."""
    return 2 if (setup.bf16 or setup.weights_dtype != "float32") else 4


def _fp32_autocast(setup: TrainingSetup) -> bool:
    """fp32 weights meet bf16 autocast only outside FSDP/DeepSpeed, which hand the layers bf16 weights."""
    return setup.weights_dtype == "float32" and setup.bf16 and setup.sharding.kind not in ("zero", "fsdp")


def _quantized(setup: TrainingSetup) -> bool:
    return setup.load_in_4bit or setup.load_in_8bit


@dataclass
class _TrainingState:
    """Parameters, gradients and optimizer states at full size, before sharding or offload."""

    params: int
    trainable: int
    weights: float
    gradients: float
    optimizer: float
    optimizer_paged: bool
    quantized_numel: int  # weights stored in 4 or 8 bit
    quantized_bytes: float  # bytes per such weight
    notes: list[str]


def _training_state(setup: TrainingSetup) -> _TrainingState:
    """Frozen base (maybe quantized) + trainable params, their gradients and optimizer states."""
    shape, notes = setup.shape, []
    frozen_b, train_b, grad_b, master_b, extra_master_b = _precision(setup)
    linears = all_linears(shape)
    total_params = parameter_count(shape)
    q_numel, per_q = 0, 0.0
    if setup.use_peft:
        trainable = lora_parameter_count(shape, setup.lora_r, setup.lora_target_modules, setup.use_dora)
        base_bytes = float(total_params * frozen_b)
        if _quantized(setup):
            q_numel = sum(lin.weight_numel for lin in linears if lin.quantizable)
            per_q = quantized_bytes_per_param(4 if setup.load_in_4bit else 8, setup.double_quant)
            base_bytes = q_numel * per_q + (total_params - q_numel) * frozen_b
            if shape.num_experts:
                notes.append("routed experts are nn.Parameters, not nn.Linear: bitsandbytes leaves them in "
                             f"{setup.weights_dtype} ({expert_parameter_count(shape) / 1e9:.1f}B params)")
        weight_bytes = base_bytes + trainable * train_b
    else:
        trainable = total_params
        weight_bytes = float(total_params * train_b)

    spec = optimizer_bytes_per_param(setup.optim, master_b)
    if spec.approximate:
        notes.append(f"optim {setup.optim}: state size approximate")
    opt_bytes = trainable * (spec.fixed_bytes + extra_master_b)
    grad_bytes = float(trainable * grad_b)
    if setup.optimizer_in_backward:
        head_numel = shape.vocab_size * shape.hidden_size
        largest = max([head_numel] + [lin.weight_numel for lin in linears]) if not setup.use_peft else trainable
        grad_bytes = float(min(trainable, largest) * grad_b)
        notes.append("optimizer in backward: at most one parameter's gradient alive")
    return _TrainingState(total_params, trainable, weight_bytes, grad_bytes, opt_bytes, spec.paged, q_numel, per_q,
                          notes)


def _shard_divisors(sh: Sharding) -> tuple[int, int, int]:
    """Over how many devices weights, gradients and optimizer states are split."""
    n = sh.num_processes
    w_div = n if (sh.kind == "fsdp" and sh.reshard_after_forward) or (sh.kind == "zero" and sh.zero_stage >= 3) else 1
    g_div = n if sh.kind == "fsdp" or (sh.kind == "zero" and sh.zero_stage >= 2) else 1
    o_div = n if sh.kind == "fsdp" or (sh.kind == "zero" and sh.zero_stage >= 1) else 1
    return w_div, g_div, o_div


@dataclass
class _Placement:
    """Per-device bytes of the training state after sharding, and what went to CPU or paged memory."""

    weights: float
    gradients: float
    optimizer: float
    cpu: float
    paged: float
    notes: list[str]


def _place(setup: TrainingSetup, state: _TrainingState, w_div: int, g_div: int, o_div: int) -> _Placement:
    """Shard the training state over the devices, then move offloaded and paged parts off the GPU."""
    sh, notes = setup.sharding, []
    quantized = _quantized(setup)
    unsharded = 0.0
    if sh.kind == "fsdp" and quantized and setup.bnb_4bit_quant_storage not in DTYPE_BYTES and w_div > 1:
        # accelerate excludes integer-stored 4-bit weights from fully_shard
        unsharded = state.quantized_numel * state.quantized_bytes
        notes.append("FSDP + 4-bit with bnb_4bit_quant_storage unset (uint8): the 4-bit weights are not "
                     "sharded; set bnb_4bit_quant_storage: bfloat16 to shard them")
    weight_bytes = (state.weights - unsharded) / w_div
    grad_bytes, opt_bytes = state.gradients / g_div, state.optimizer / o_div
    if sh.kind == "ddp" and sh.num_processes > 1 and not setup.optimizer_in_backward:
        # DDP's allreduce buckets are a second flat copy of the gradients unless
        # gradient_as_bucket_view=True, which accelerate does not set by default.
        grad_bytes *= 2
        notes.append("DDP: gradients counted twice (allreduce buckets, gradient_as_bucket_view=False)")
    cpu = 0.0
    if sh.kind == "fsdp" and sh.offload_params and quantized:
        notes.append("FSDP + CPU offload + 4-bit: a published run of this kind (PEFT docs, FSDP1) used 2.2x "
                     "the estimate (benchmarks/memory_plan_vs_published.py); treat the total as a lower bound")
    if sh.kind == "fsdp" and sh.offload_params:
        cpu += weight_bytes + grad_bytes + opt_bytes
        weight_bytes = grad_bytes = opt_bytes = 0.0
    if sh.kind == "zero" and sh.offload_optimizer:
        cpu += grad_bytes + opt_bytes
        grad_bytes = opt_bytes = 0.0
    if sh.kind == "zero" and sh.offload_params and sh.zero_stage >= 3:
        cpu += weight_bytes
        weight_bytes = 0.0
    weight_bytes += unsharded  # ignored by FSDP: neither sharded nor offloaded
    paged = 0.0
    if state.optimizer_paged:
        paged, opt_bytes = opt_bytes, 0.0
        notes.append(f"{setup.optim}: {paged / GIB:.2f} GiB of optimizer states in CUDA unified memory, "
                     "evicted to CPU RAM under pressure; not counted in the total")
    return _Placement(weight_bytes, grad_bytes, opt_bytes, cpu, paged, notes)


@dataclass
class _Activations:
    """Activation bytes at the two moments of a step that can peak."""

    saved: float  # end of forward: what autograd keeps for backward
    loss: float  # end of forward: logits and loss
    recompute: float  # end of backward: one layer's recomputed (or first layer's saved) tensors
    checkpointing: bool
    notes: list[str]


def _activations(setup: TrainingSetup, w_div: int) -> _Activations:
    """Activations at per_device_train_batch_size x max_length tokens."""
    shape, notes = setup.shape, []
    c, fp32_autocast = _compute_bytes(setup), _fp32_autocast(setup)
    tokens = setup.per_device_train_batch_size * setup.max_length
    eager_seq = setup.max_length if setup.attn_implementation == "eager" else 0
    per_layer = [tokens * _layer_activation_bytes(setup, i, c, fp32_autocast, eager_seq)
                 for i in range(shape.num_layers)]
    # Under bf16 autocast an fp32 weight is cast to bf16 for each matmul and the cast is kept for
    # backward: trainable weights by autocast's cast cache until the forward ends, frozen ones (not
    # 4-bit: bitsandbytes dequantizes again in backward) as the saved operand of their matmul.
    casts_total = casts_layer = 0.0
    head_numel = shape.vocab_size * shape.hidden_size
    if fp32_autocast and not _quantized(setup):
        linear_numel = sum(lin.weight_numel for lin in all_linears(shape))
        casts_total = 2 * (linear_numel + head_numel) / w_div
        casts_layer = 2 * max(sum(lin.weight_numel for lin in layer_linears(shape, i)) for i in range(shape.num_layers))
        notes.append("fp32 weights under bf16 autocast: bf16 copies of the weights live through the forward pass")
    # RoPE tables shared by all layers: cos and sin for Llama, one complex64 freqs_cis for Llama 4
    rope = tokens * shape.head_dim * (4 if shape.family == "llama4" else 2 * (4 if fp32_autocast else c))
    checkpointing = setup.gradient_checkpointing or setup.sharding.activation_checkpointing
    if checkpointing:
        # Only each layer's input survives the forward; backward recomputes one layer at a time.
        saved = tokens * shape.num_layers * shape.hidden_size * (4 if fp32_autocast else c) + rope
        if casts_total and setup.use_peft:
            casts_total = 2 * head_numel  # only the output head's cast sits outside the checkpoints
        recompute = max(per_layer) + casts_layer
    else:
        saved = sum(per_layer) + rope
        recompute = per_layer[0] + casts_layer
    saved += casts_total
    loss = tokens * logits_bytes_per_token(shape, setup.loss_impl, c)
    return _Activations(saved, loss, recompute, checkpointing, notes)


def _layer_activation_bytes(setup: TrainingSetup, layer: int, c: int, fp32_autocast: bool, eager_seq: int) -> float:
    """Bytes per token autograd saves in one decoder layer, with this setup's LoRA targets."""
    targets = lora_targets(setup.shape, setup.lora_target_modules, layer) if setup.use_peft else []
    return layer_activation_bytes_per_token(
        setup.shape, layer, base_trainable=not setup.use_peft, lora_in_features=[lin.in_features for lin in targets],
        lora_r=setup.lora_r, compute_bytes=c, fp32_weights_autocast=fp32_autocast, eager_attention_seq=eager_seq)


def _transient_bytes(setup: TrainingSetup, state: _TrainingState, w_div: int) -> float:
    """Short-lived buffers, counted in overhead: dequantized weights and all-gathered layers."""
    shape, sh, c = setup.shape, setup.sharding, _compute_bytes(setup)
    quantized = _quantized(setup)
    transient = 0.0
    if quantized:  # bitsandbytes dequantizes one weight to the compute dtype per matmul
        transient += max(lin.weight_numel for lin in all_linears(shape) if lin.quantizable) * c
    if w_div > 1 or (sh.kind == "fsdp" and sh.offload_params) or (sh.kind == "zero" and sh.offload_params):
        # the all-gathered current and prefetched layer, plus the output head kept gathered for the
        # loss; 4-bit weights travel packed
        largest = max(_gathered_layer_bytes(setup, state, i, c) for i in range(shape.num_layers))
        transient += 2 * largest + shape.vocab_size * shape.hidden_size * c
    return transient


def _gathered_layer_bytes(setup: TrainingSetup, state: _TrainingState, layer: int, c: int) -> float:
    """One layer's all-gathered weights: 4-bit ones packed, the rest in the compute dtype."""
    linears = layer_linears(setup.shape, layer) if _quantized(setup) else []
    q = sum(lin.weight_numel for lin in linears if lin.quantizable)
    return q * state.quantized_bytes + (layer_parameter_count(setup.shape, layer) - q) * c


def estimate_memory(setup: TrainingSetup) -> MemoryEstimate:
    """Estimate the peak per-device memory of one training step; see the module docstring."""
    state = _training_state(setup)
    w_div, g_div, o_div = _shard_divisors(setup.sharding)
    placed = _place(setup, state, w_div, g_div, o_div)
    acts = _activations(setup, w_div)
    # The two candidate peaks of a step: gradient accumulation keeps the last micro-batch's gradients
    # through the forward pass.
    accumulating = setup.gradient_accumulation_steps > 1 and not setup.optimizer_in_backward
    grads_in_forward = placed.gradients if accumulating else 0.0
    if acts.saved + acts.loss + grads_in_forward >= acts.recompute + placed.gradients:
        phase, activations, grads_now = "end of forward (loss)", acts.saved + acts.loss, grads_in_forward
        detail = {"saved for backward": acts.saved, "logits and loss": acts.loss}
    else:
        phase, activations, grads_now = "end of backward", acts.recompute, placed.gradients
        detail = {"one layer recomputed" if acts.checkpointing else "first layer's saved tensors": acts.recompute}
    live = placed.weights + placed.optimizer + grads_now + activations
    overhead = CUDA_CONTEXT_BYTES + FRAGMENTATION * live + _transient_bytes(setup, state, w_div)
    return MemoryEstimate(
        weights=placed.weights, gradients=grads_now, optimizer=placed.optimizer, activations=activations,
        overhead=overhead, peak_phase=phase, params=state.params, trainable_params=state.trainable,
        paged_optimizer=placed.paged, cpu_offloaded=placed.cpu, activations_detail=detail,
        notes=state.notes + placed.notes + acts.notes)
