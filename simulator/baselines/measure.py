"""Measure batch-1 KV-cached decode of a HF-transformers model on this machine (needs the `[export]` extra).

Random weights built offline from the model-zoo architecture (GPT2Config / LlamaConfig; nothing is
downloaded; timing does not depend on weight values). Two software stacks (docs/baselines.md, "Stacks"):

* `hf-forward`: the context is filled once with `context - 1` random tokens (prefill, untimed); each timed
  step is one forward call of one new token against that cache (attention spans exactly `context` keys)
  and the cache is cropped back afterwards (untimed).
* `hf-generate`: `model.generate()` greedy (eager PyTorch, no EOS so it never stops early), continued from
  a prefilled cache so only decode steps run; a StoppingCriteria records a timestamp once per generated
  token, so each sample is one whole iteration of the generate loop (forward, logits processing, argmax,
  stop check, input/cache bookkeeping). The last step attends over exactly `context` keys; the first
  `warmup + repeats - 1` over a few keys fewer.

Robust to a shared, noisy machine as STREAM is: `ms_per_token` is the best (minimum) of the repeats
(interference from other processes only ever adds time); the median is kept too, and `spread` =
median / best - 1 is reported with a warning when it exceeds `SPREAD_WARN`. Each profile records when it
was taken and the load average (`os.getloadavg`) before and after. Power: Intel/AMD RAPL package energy
from /sys/class/powercap when readable, NVML on CUDA.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
import warnings
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


STACKS_MEASURABLE = ("hf-forward", "hf-generate")
SPREAD_WARN = 0.25   # median more than 25 % above the best repeat: the machine was busy; say so


def _cache_kwarg(model) -> str:
    """transformers >= 5.2x calls the cache argument `cache`; older versions `past_key_values`."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def measure_decode(model_name: str, context: int, dtype: str = "fp32", device: str = "cpu", *,
                   warmup: int = 3, repeats: int = 10, threads: int | None = None, stack: str = "hf-forward",
                   built=None) -> MeasuredProfile:
    """One measured profile. `built` = a `build_hf_model(model_name, dtype, device)` result to reuse."""
    torch = import_torch()
    if dtype not in TORCH_DTYPES:
        raise PimsimError(f"--dtype {dtype}: choose one of {', '.join(TORCH_DTYPES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise PimsimError("--device cuda: no CUDA device is visible to torch; use --device cpu")
    if device not in ("cpu", "cuda"):
        raise PimsimError(f"--device {device}: choose cpu or cuda")
    if stack not in STACKS_MEASURABLE:
        raise PimsimError(f"--stack {stack}: measurable stacks are {', '.join(STACKS_MEASURABLE)} "
                          f"(`optimized` needs CUDA graphs; predict it instead)")
    if repeats < 1 or warmup < 0:
        raise PimsimError(f"--repeats {repeats} / --warmup {warmup}: need repeats >= 1 and warmup >= 0")
    if threads:
        torch.set_num_threads(threads)
    model, cfg = built or build_hf_model(model_name, dtype, device)
    steps = warmup + repeats
    if not max(2, steps + 1) <= context <= cfg.context_limit:
        raise PimsimError(f"--context {context}: must be in {max(2, steps + 1)}..{cfg.context_limit} for "
                          f"{model_name} with {steps} warm-up + repeat steps")
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    load_before = os.getloadavg()
    when = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    meter = _PowerMeter(torch, device)
    with torch.inference_mode():
        if stack == "hf-forward":
            times, cpu_times = _forward_steps(torch, model, cfg, context, steps, sync, meter)
        else:
            times, cpu_times = _generate_steps(torch, model, cfg, context, steps, sync, meter)
    samples, cpu_samples = times[warmup:], cpu_times[warmup:]
    best, med = min(samples), statistics.median(samples)
    spread = med / best - 1
    if spread > SPREAD_WARN:
        warnings.warn(f"baseline measure {model_name} ctx {context} {dtype} {stack}: repeats disagree (median "
                      f"{med:.2f} ms is {spread * 100:.0f} % above the best {best:.2f} ms; load "
                      f"{os.getloadavg()[0]:.2f}); the best is reported", stacklevel=2)
    power_w, energy_j, source = meter.result(samples, best)
    import transformers

    la = os.getloadavg()
    host = {"cpu": _cpu_name(), "machine": platform.machine(), "torch": str(torch.__version__),
            "transformers": transformers.__version__, "when": when,
            "load_avg_before": [round(x, 2) for x in load_before], "load_avg_after": [round(x, 2) for x in la],
            "load_avg_1m": la[0], "cores": os.cpu_count()}
    if device == "cuda":
        host["gpu"] = torch.cuda.get_device_name()
    return MeasuredProfile(
        model=model_name, context=context, dtype=dtype, device=device, ms_per_token=best,
        ms_per_token_samples=tuple(samples), cpu_ms_per_token=statistics.median(cpu_samples), warmup=warmup,
        repeats=repeats, threads=torch.get_num_threads(), power_w=power_w, energy_per_token_j=energy_j,
        power_source=source, host=host, stack=stack, ms_per_token_median=med, spread=spread,
        cpu_ms_per_token_best=min(cpu_samples),
    )


def _forward_steps(torch, model, cfg, context, steps, sync, meter):
    gen = torch.Generator().manual_seed(1)
    dev = next(model.parameters()).device
    prompt = torch.randint(cfg.vocab_size, (1, context - 1), generator=gen).to(dev)
    step = torch.randint(cfg.vocab_size, (1, 1), generator=gen).to(dev)
    kw = _cache_kwarg(model)
    cache = model(prompt, use_cache=True).past_key_values
    times, cpu_times = [], []
    for _ in range(steps):
        sync()
        meter.start()
        c0, t0 = time.process_time(), time.perf_counter()
        model(step, use_cache=True, **{kw: cache})
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
        cpu_times.append((time.process_time() - c0) * 1e3)
        meter.stop()
        _crop_one(cache, context - 1)
    return times, cpu_times


def _generate_steps(torch, model, cfg, context, steps, sync, meter):
    """`steps` timed iterations of generate()'s decode loop, the last one over `context` keys."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Stamp(StoppingCriteria):  # called once per generated token, after its forward and argmax
        def __init__(self):
            self.wall: list[float] = []
            self.cpu: list[float] = []

        def __call__(self, input_ids, scores, **kwargs):
            sync()
            self.wall.append(time.perf_counter())
            self.cpu.append(time.process_time())
            meter.lap()
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    gen = torch.Generator().manual_seed(1)
    dev = next(model.parameters()).device
    # the prompt's last token is decoded first (untimed: it ends the prefill); then `steps` timed tokens
    prompt = torch.randint(cfg.vocab_size, (1, context - steps), generator=gen).to(dev)
    cache = model(prompt[:, :-1], use_cache=True).past_key_values
    model.generation_config.eos_token_id = None   # random weights: never stop early
    model.generation_config.pad_token_id = 0
    stamp = _Stamp()
    meter.start()
    model.generate(prompt, max_new_tokens=steps + 1, min_new_tokens=steps + 1, do_sample=False,
                   stopping_criteria=StoppingCriteriaList([stamp]), **{_cache_kwarg(model): cache})
    meter.stop()
    wall = [(b - a) * 1e3 for a, b in zip(stamp.wall, stamp.wall[1:])]
    cpu = [(b - a) * 1e3 for a, b in zip(stamp.cpu, stamp.cpu[1:])]
    if len(wall) != steps:
        raise PimsimError(f"baseline measure: generate() produced {len(wall) + 1} tokens, expected {steps + 1}; "
                          f"this transformers version is not supported for --stack hf-generate")
    return wall, cpu


class _PowerMeter:
    """RAPL package energy (CPU) or NVML power samples (CUDA), when readable; otherwise nothing."""

    def __init__(self, torch, device: str):
        self.rapl = _rapl_files() if device == "cpu" else []
        self.nvml = None
        self.energy_uj = 0
        self.laps = 0
        self.power: list[float] = []
        self._e0 = 0
        if device == "cuda":
            try:
                import pynvml

                pynvml.nvmlInit()
                self.nvml = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
                self._pynvml = pynvml
            except Exception:  # noqa: BLE001 -- NVML missing, not permitted or failing: no power reading
                self.nvml = None

    def start(self) -> None:
        if self.rapl:
            self._e0 = _read_uj(self.rapl)

    def lap(self) -> None:
        self.laps += 1
        if self.nvml is not None:
            self.power.append(self._pynvml.nvmlDeviceGetPowerUsage(self.nvml) / 1e3)

    def stop(self) -> None:
        if self.rapl:
            self.energy_uj += max(_read_uj(self.rapl) - self._e0, 0)  # a counter wrap loses energy, never adds

    def result(self, samples: list[float], best_ms: float):
        if self.rapl and self.energy_uj > 0:
            power_w = self.energy_uj * 1e-6 / (sum(samples) * 1e-3)
            return power_w, power_w * best_ms * 1e-3, "rapl"
        if self.power:
            power_w = statistics.median(self.power)
            return power_w, power_w * best_ms * 1e-3, "nvml"
        return None, None, "none"


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
