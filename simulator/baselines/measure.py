"""Measure batch-1 KV-cached decode of a HF-transformers model on this machine (needs the `[export]` extra).

Random weights built offline from the model-zoo architecture (GPT2Config / LlamaConfig; nothing is
downloaded). The context is filled once with `context - 1` random tokens (prefill, untimed); each timed step
runs one forward call of one new token against that cache (so attention spans exactly `context` keys) and
the cache is cropped back afterwards (untimed). Warm-up steps are discarded; the result is the median of
the repeats. Power: Intel/AMD RAPL package energy from /sys/class/powercap when readable, NVML on CUDA.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path

from simulator.baselines.profile import MeasuredProfile
from simulator.errors import PimsimError

TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def import_torch():
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as exc:
        raise PimsimError(f"baseline measure needs torch and transformers ({exc.name} is missing): "
                          f'pip install -e ".[export]"') from None
    return torch


def build_hf_model(name: str, dtype: str, device: str):
    """A randomly initialised HF causal LM with the zoo architecture of `name`, in eval mode."""
    torch = import_torch()
    from simulator.trace.zoo import get_model

    cfg = get_model(name)
    torch.manual_seed(0)
    if cfg.family in ("gpt2", "gpt3"):
        from transformers import GPT2Config, GPT2LMHeadModel

        hf_cfg = GPT2Config(n_layer=cfg.n_layers, n_embd=cfg.d_model, n_head=cfg.n_heads,
                            n_positions=cfg.context_limit, vocab_size=cfg.vocab_size, n_inner=cfg.ffn_dim,
                            layer_norm_epsilon=cfg.norm_eps)
        if cfg.head_dim * cfg.n_heads != cfg.d_model:
            raise PimsimError(f"model {name}: HF GPT2 needs heads x head_dim = d_model; measure another model")
        cls = GPT2LMHeadModel
    else:
        from transformers import LlamaConfig, LlamaForCausalLM

        hf_cfg = LlamaConfig(hidden_size=cfg.d_model, intermediate_size=cfg.ffn_dim, num_hidden_layers=cfg.n_layers,
                             num_attention_heads=cfg.n_heads, num_key_value_heads=cfg.n_kv_heads,
                             head_dim=cfg.head_dim, vocab_size=cfg.vocab_size, max_position_embeddings=cfg.context_limit,
                             rms_norm_eps=cfg.norm_eps, rope_theta=cfg.rope_theta or 10000.0,
                             tie_word_embeddings=cfg.tied_embeddings)
        cls = LlamaForCausalLM
    with torch.device(device):
        model = cls(hf_cfg)
    model = model.to(getattr(torch, TORCH_DTYPES[dtype])).eval()
    return model, cfg


def _rapl_files() -> list[Path]:
    root = Path("/sys/class/powercap")
    out = []
    for zone in sorted(root.glob("intel-rapl:*")) if root.is_dir() else []:
        name = (zone / "name").read_text().strip() if (zone / "name").is_file() else ""
        if name.startswith("package") and (zone / "energy_uj").is_file():
            try:
                int((zone / "energy_uj").read_text())
                out.append(zone / "energy_uj")
            except (OSError, ValueError):
                pass
    return out


def _read_uj(files: list[Path]) -> int:
    return sum(int(f.read_text()) for f in files)


def measure_decode(model_name: str, context: int, dtype: str = "fp32", device: str = "cpu", *,
                   warmup: int = 3, repeats: int = 10, threads: int | None = None) -> MeasuredProfile:
    torch = import_torch()
    if dtype not in TORCH_DTYPES:
        raise PimsimError(f"--dtype {dtype}: choose one of {', '.join(TORCH_DTYPES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise PimsimError("--device cuda: no CUDA device is visible to torch; use --device cpu")
    if device not in ("cpu", "cuda"):
        raise PimsimError(f"--device {device}: choose cpu or cuda")
    if threads:
        torch.set_num_threads(threads)
    model, cfg = build_hf_model(model_name, dtype, device)
    if not 2 <= context <= cfg.context_limit:
        raise PimsimError(f"--context {context}: must be in 2..{cfg.context_limit} for {model_name}")
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    gen = torch.Generator().manual_seed(1)
    prompt = torch.randint(cfg.vocab_size, (1, context - 1), generator=gen).to(device)
    step = torch.randint(cfg.vocab_size, (1, 1), generator=gen).to(device)

    rapl = _rapl_files() if device == "cpu" else []
    nvml = None
    if device == "cuda":
        try:
            import pynvml

            pynvml.nvmlInit()
            nvml = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
        except Exception:  # NVML missing or not permitted: no power reading
            nvml = None

    samples: list[float] = []
    cpu_samples: list[float] = []
    energy_uj = 0
    power_samples: list[float] = []
    with torch.inference_mode():
        cache = model(prompt, use_cache=True).past_key_values
        for i in range(warmup + repeats):
            sync()
            e0 = _read_uj(rapl) if rapl and i >= warmup else 0
            c0, t0 = time.process_time(), time.perf_counter()
            model(step, past_key_values=cache, use_cache=True)
            sync()
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if i >= warmup:
                samples.append(dt * 1e3)
                cpu_samples.append(dc * 1e3)
                if rapl:
                    e1 = _read_uj(rapl)
                    energy_uj += max(e1 - e0, 0)  # a counter wrap loses one sample's energy, never adds
                if nvml is not None:
                    power_samples.append(pynvml.nvmlDeviceGetPowerUsage(nvml) / 1e3)
            _crop_one(cache, context - 1)
    ms = statistics.median(samples)
    power_w = energy_j = None
    source = "none"
    if rapl and energy_uj > 0:
        energy_j = energy_uj * 1e-6 / repeats
        power_w = energy_j / (sum(samples) * 1e-3 / repeats)
        source = "rapl"
    elif power_samples:
        power_w = statistics.median(power_samples)
        energy_j = power_w * ms * 1e-3
        source = "nvml"
    import transformers

    host = {"cpu": _cpu_name(), "machine": platform.machine(), "torch": str(torch.__version__),
            "transformers": transformers.__version__, "load_avg_1m": os.getloadavg()[0]}
    if device == "cuda":
        host["gpu"] = torch.cuda.get_device_name()
    return MeasuredProfile(
        model=model_name, context=context, dtype=dtype, device=device, ms_per_token=ms,
        ms_per_token_samples=tuple(samples), cpu_ms_per_token=statistics.median(cpu_samples), warmup=warmup, repeats=repeats, threads=torch.get_num_threads(),
        power_w=power_w, energy_per_token_j=energy_j, power_source=source, host=host,
    )


def _crop_one(cache, keep: int) -> None:
    """Drop the token the timed step appended (transformers >= 5: negative count; older: absolute length)."""
    try:
        cache.crop(-1)
    except ValueError:
        cache.crop(keep)
    if cache.get_seq_length() != keep:
        raise PimsimError(f"baseline measure: KV cache has {cache.get_seq_length()} tokens after crop, expected "
                          f"{keep}; this transformers version is not supported")


def _cpu_name() -> str:
    from simulator.baselines.calibrate import _cpu_name as name

    return name()
