"""``gradproof bound``: the Pascanu et al. (2013) verdict for a weight matrix or a torch model.

::

    gradproof bound --activation tanh --weights W.npy [--json]
    gradproof bound --torch-model lstm.pt [--json]
    gradproof bound --nonlinearity relu --torch-model rnn.pt    # nn.RNN state_dicts omit tanh/relu
    gradproof bound --torch-model net.pt --prefix rnn.          # the nn.LSTM inside a Net
    gradproof bound --equations mgu.txt --state h [--weights params.npz | --hidden 4 --seed 0]

All mathematics comes from :mod:`numeric.regime`; this module reads files and prints.
"""

from __future__ import annotations

import json
import math
import os
from typing import TYPE_CHECKING, Any

import click

from ..derive.errors import GradproofError
from .cell_option import equations_options
from .model_option import torch_model_options

if TYPE_CHECKING:
    import numpy as np

__all__ = ["command", "analyse_weights", "analyse_torch_model", "analyse_cell"]


def _one_line(text: str, limit: int = 400) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


# --------------------------------------------------------------------------- inputs


def _activation(spec: str) -> Any:
    from ..numeric.regime import resolve_activation

    try:
        return resolve_activation(spec)
    except GradproofError as exc:
        raise GradproofError(_one_line(str(exc))) from None
    except Exception as exc:  # noqa: BLE001 - any parser failure is bad user input
        raise GradproofError(
            f"cannot use activation {spec!r} ({_first_line(exc)}); pass a name such as tanh or "
            "an expression in x such as tanh(3*x)"
        ) from None


def _load_weights(path: str) -> np.ndarray:
    import numpy as np

    if not os.path.exists(path):
        raise GradproofError(f"no weights file at {path!r}; save one with numpy.save('W.npy', W)")
    if os.path.isdir(path):
        raise GradproofError(f"{path!r} is a directory; pass a .npy file saved with numpy.save")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except OSError as exc:
        raise GradproofError(f"cannot open {path!r} ({_first_line(exc)})") from None
    if magic != b"\x93NUMPY" and not magic.startswith(b"PK"):
        raise GradproofError(
            f"{path!r} is not a .npy file (no NumPy header); save the matrix with "
            "numpy.save('W.npy', W)"
        )
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - numpy raises several types for a bad file
        raise GradproofError(
            f"cannot read {path!r} as a .npy array ({_one_line(_first_line(exc), 160)}); "
            "save the matrix with numpy.save('W.npy', W)"
        ) from None
    if not isinstance(loaded, np.ndarray):
        names = list(getattr(loaded, "files", []))
        close = getattr(loaded, "close", None)
        if close is not None:
            close()
        raise GradproofError(
            f"{path!r} is an .npz archive with arrays {names}; save the one matrix with "
            "numpy.save('W.npy', W)"
        )
    return loaded


def analyse_weights(activation: str, path: str) -> Any:
    """The :class:`numeric.regime.Regime` of the matrix in a ``.npy`` file."""
    from ..numeric.regime import regime

    act = _activation(activation)
    W = _load_weights(path)
    return regime(act, W)


def analyse_torch_model(
    path: str, activation: str | None = None, *, nonlinearity: str | None = None, prefix: str | None = None
) -> Any:
    """The verdicts of a saved nn.RNN/LSTM/GRU: a :class:`numeric.regime.ModelRegime` for one
    layer and direction, a :class:`numeric.stacked.StackRegime` for a stacked/bidirectional model.

    ``activation`` is the older spelling of ``nonlinearity`` (the nn.RNN nonlinearity).
    """
    from ..numeric.regime import model_regime
    from ..numeric.stacked import stack_regime
    from .model_option import load_user_model

    if not os.path.exists(path):
        raise GradproofError(
            f"no model file at {path!r}; save one with torch.save(module.state_dict(), path)"
        )
    if activation is not None and activation not in ("tanh", "relu"):
        raise GradproofError(
            f"--activation for a torch model is the nn.RNN nonlinearity, 'tanh' or 'relu', got "
            f"{activation!r}; LSTM and GRU gates have fixed activations, so drop it for them"
        )
    if activation is not None and nonlinearity is not None and activation != nonlinearity:
        raise GradproofError(f"--activation {activation} and --nonlinearity {nonlinearity} disagree; pass one")
    nl = nonlinearity or activation
    try:
        user = load_user_model(path, nonlinearity=nl, prefix=prefix)
    except GradproofError as exc:
        if activation is not None and "--nonlinearity applies" in str(exc):
            raise GradproofError(
                f"--activation does not apply to the {user_kind(path, prefix)} model (sigmoid gates, "
                "tanh candidate); drop it"
            ) from None
        raise GradproofError(_one_line(str(exc))) from None
    if user.single:
        return model_regime(user.model.cell, user.model.layers[0][0])
    return stack_regime(user.model)


def _load_params(path: str) -> dict[str, np.ndarray]:
    """The named parameters of an ``.npz`` archive (numpy.savez(path, W_f=..., ...))."""
    import numpy as np

    if not os.path.isfile(path):
        raise GradproofError(f"no parameters file at {path!r}; save one with numpy.savez('p.npz', W=W, b=b, ...)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not hasattr(archive, "files"):
                raise ValueError("not an archive")
            return {k: np.array(archive[k]) for k in archive.files}
    except Exception as exc:  # noqa: BLE001 - numpy raises several types for a bad file
        raise GradproofError(
            f"cannot read {path!r} as an .npz archive of named parameters ({_one_line(_first_line(exc), 160)}); "
            "save them with numpy.savez('p.npz', W_f=W_f, b_f=b_f, ...)"
        ) from None


def analyse_cell(cell: Any, *, weights: str | None = None, hidden: int = 4, inputs: int = 3,
                 seed: int = 0) -> Any:
    """The :class:`numeric.cell_regime.CellRegime` of a cell: with the parameters of ``weights``
    (an ``.npz`` keyed by the equations' names), else with ``numeric.init(cell, hidden, inputs, seed)``."""  # fmt: skip
    from ..numeric import init
    from ..numeric.initialization import check_parameters
    from ..numeric.regime import regime

    if weights is not None:
        params = _load_params(weights)
        check_parameters(cell, params)
    else:
        params = init(cell, hidden=hidden, inputs=inputs, seed=seed)
    return regime(cell, params)


def user_kind(path: str, prefix: str | None) -> str:
    from ..numeric.convert import read_torch_file

    kind = read_torch_file(path, prefix=prefix).kind
    return {"lstm": "lstm", "gru": "gru-torch"}.get(kind, kind)


# --------------------------------------------------------------------------- printing


def _num(x: float) -> str:
    return f"{x:.6g}"


def _gamma_text(r: Any) -> str:
    """γ exact, or γ ∈ [lo, hi] (certified) when it has no closed form (then η uses hi)."""
    from ..derive import gamma_enclosure

    try:
        enclosure = gamma_enclosure(r.activation)
    except Exception:  # noqa: BLE001 - a name not parsed as an activation (e.g. an LSTM block)
        enclosure = None
    if enclosure is None or enclosure.is_exact:
        number = _num(r.gamma)  # the decimal only when it says more: 1/4 (= 0.25), not 1 (= 1)
        return r.gamma_exact if r.gamma_exact == number else f"{r.gamma_exact}  (= {number})"
    return f"γ ∈ [{float(enclosure.lo):.15g}, {float(enclosure.hi):.15g}] (certified; η uses hi)"


def _regime_table(r: Any, title: str) -> list[str]:
    rows = [
        ("activation", r.activation),
        ("gamma = sup|sigma'|", _gamma_text(r)),
        ("sigma_max(W)", _num(r.sigma_max)),
        ("rho(W)", _num(r.spectral_radius)),
        ("eta = gamma*sigma_max", _num(r.eta)),
        ("regime", r.verdict),
    ]
    if r.linear_verdict is not None:
        rows.append(("linear verdict (rho)", r.linear_verdict))
    width = max(len(k) for k, _ in rows)
    lines = [title]
    lines += [f"  {k.ljust(width)}  {v}" for k, v in rows]
    if r.verdicts_disagree:
        lines.append(
            f"  note: the linear verdict ({r.linear_verdict}, rho = {_num(r.spectral_radius)}) and "
            f"the general verdict ({r.verdict}, sigma_max = {_num(r.sigma_max)}) disagree: "
            "W is not normal, so ||W^k|| can grow before it decays."
        )
    lines.append(f"  {r.explanation}")
    return lines


def _stack_table(m: Any, path: str) -> list[str]:
    shape = f"{m.num_layers} layer{'s' if m.num_layers > 1 else ''}" + (", bidirectional" if m.bidirectional else "")
    lines = [f"gradproof bound: {m.model} ({shape}, hidden {m.hidden}) from {path}"]
    head = ("layer", "block", "activation", "gamma", "sigma_max", "rho", "eta", "regime")
    body = [
        (label, name, r.activation, r.gamma_exact, _num(r.sigma_max), _num(r.spectral_radius),
         _num(r.eta), r.verdict + ("  <- main" if name == mr.main else ""))
        for label, mr in m.layers for name, r in mr.blocks.items()
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in (head, *body)) for i in range(len(head))]
    for row in (head, *body):
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    for label, mr in m.layers:
        if mr.direct_path is not None:
            lines.append(f"  {label}: direct path ({mr.direct_path.verdict}), gate {mr.direct_path.gate} "
                         f"<= {_num(mr.direct_path.retain_upper)} at zero input")  # fmt: skip
    lines.append(f"  {m.explanation}")
    if m.eta_depth is not None:
        over = "layer 1" if m.num_layers == 2 else f"layers 1..{m.num_layers - 1}"
        lines.append(f"  depth steps: gamma*sigma_max(W_x) <= {_num(m.eta_depth)} over {over}")
    return lines


def _model_table(m: Any, path: str) -> list[str]:
    lines = [f"gradproof bound: {m.model} (hidden {m.hidden}) from {path}"]
    head = ("block", "activation", "gamma", "sigma_max", "rho", "eta", "regime")
    body = [
        (name, r.activation, r.gamma_exact, _num(r.sigma_max), _num(r.spectral_radius),
         _num(r.eta), r.verdict + ("  <- main" if name == m.main else ""))
        for name, r in m.blocks.items()
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in (head, *body)) for i in range(len(head))]
    for row in (head, *body):
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    main = m.main_regime
    lines.append(f"  main recurrent matrix {m.main}: {main.explanation}")
    if main.verdicts_disagree:
        lines.append("  note: the linear (rho) and general (sigma_max) verdicts disagree.")
    if m.direct_path is not None:
        d = m.direct_path
        lines.append(f"  direct path ({d.verdict}): {d.explanation}")
    lines.append(f"  {m.note}")
    return lines


def _cell_table(r: Any, source: str) -> list[str]:
    """``bound --equations``: every γ, the derived bound, η and the verdict, then the blocks."""
    from ..derive.algebra import text

    lines = [f"gradproof bound: {r.model} (state {', '.join(r.state)}; hidden {r.hidden}) {source}"]
    for name, g in r.gammas.items():
        lines.append(f"  gamma = sup|sigma'| of {name}: {g.text}")
    lines.append(f"  derived bound: ||ds(t)/ds(t-1)||_2 <= {text(r.bound)}")
    lines.append("    (MaxAbs(v) = max_k |v_k|, SigmaMax(W) = the largest singular value of W)")
    ranges = [f"{k} in [{lo:.4g}, {hi:.4g}]" for k, (lo, hi) in r.state_ranges if math.isfinite(lo) and math.isfinite(hi)]
    if ranges:
        lines.append(f"  state ranges (from an initial state in [-1, 1]): {', '.join(ranges)}")
    eta = _num(r.eta) if math.isfinite(r.eta) else "inf (grows with " + ", ".join(r.unbounded or ("the state",)) + ")"
    lines.append(f"  eta = sup of the bound: {eta}")
    lines.append(f"  regime: {r.verdict}")
    lines.append(f"  {r.explanation}")
    if r.blocks:
        head = ("block", "activation", "gamma", "sigma_max", "rho", "eta", "regime")
        # a γ without closed form is its certified upper end, a long rational: shown as a decimal
        body = [(k, b.activation, b.gamma_exact if len(b.gamma_exact) <= 12 else f"<= {_num(b.gamma)}",
                 _num(b.sigma_max), _num(b.spectral_radius), _num(b.eta), b.verdict)
                for k, b in r.blocks.items()]  # fmt: skip
        widths = [max(len(row[i]) for row in (head, *body)) for i in range(len(head))]
        for row in (head, *body):
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        w = r.main_regime
        lines.append(f"  worst block: {r.main} ({w.activation}), eta = {_num(w.eta)}: {w.verdict} for that term alone")
        lines.append(f"  {r.note}")
    return lines


# --------------------------------------------------------------------------- the command


@click.command(
    "bound",
    short_help="Pascanu et al. (2013) regime of a weight matrix or a torch model.",
)
@click.option(
    "--activation",
    "activation",
    metavar="NAME_OR_EXPR",
    default=None,
    help="sigma: tanh, sigmoid, relu, hard_sigmoid, identity, or an expression in x such as "
    "'tanh(3*x)'. Required with --weights; with --torch-model the same as --nonlinearity.",
)
@click.option(
    "--weights",
    metavar="FILE.npy",
    default=None,
    help="The recurrent matrix W_h (n, n), saved with numpy.save; with --equations an .npz of the "
    "cell's named parameters (numpy.savez).",
)
@click.option(
    "--torch-model",
    "torch_model",
    metavar="FILE.pt",
    default=None,
    help="An nn.RNN/LSTM/GRU state_dict saved with torch.save (any num_layers, bidirectional).",
)
@torch_model_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@equations_options
@click.option("--hidden", type=click.IntRange(1, 512), default=None,
              help="With --equations and no --weights: hidden size n of the random weights [4].")
@click.option("--inputs", type=click.IntRange(1, 512), default=None,
              help="With --equations and no --weights: input size m of the random weights [3].")
@click.option("--seed", type=click.IntRange(0), default=None,
              help="With --equations and no --weights: seed of the random weights [0].")
def command(activation: str | None, weights: str | None, torch_model: str | None, nonlinearity: str | None,
            prefix: str | None, as_json: bool, eq_file: str | None = None, eq_state: str | None = None,
            eq_name: str | None = None, hidden: int | None = None, inputs: int | None = None,
            seed: int | None = None) -> None:
    """The Pascanu et al. (2013) bound: gamma, sigma_max, rho, eta = gamma*sigma_max and the
    regime (vanishing guaranteed if eta < 1, exploding possible if sigma_max > 1/gamma); for a
    stacked or bidirectional model per layer, direction and gate block, and for the whole stack;
    for your own cell (--equations FILE --state h,c) every gamma, its derived step bound and eta."""  # fmt: skip
    from .cell_option import user_cell

    mine = user_cell(eq_file, eq_state, eq_name)
    if mine is None and (hidden, inputs, seed) != (None, None, None):
        raise click.UsageError("--hidden, --inputs and --seed go with --equations FILE")
    if mine is not None:
        if activation is not None or torch_model is not None or nonlinearity is not None or prefix is not None:
            raise click.UsageError("--equations takes --weights PARAMS.npz or random weights (--hidden, "
                                   "--inputs, --seed), not --activation, --torch-model, --nonlinearity or --prefix")  # fmt: skip
        if weights is not None and (hidden, inputs, seed) != (None, None, None):
            raise click.UsageError("--hidden, --inputs and --seed choose random weights; drop them with --weights")
        r = analyse_cell(mine, weights=weights, hidden=hidden or 4, inputs=inputs or 3, seed=seed or 0)
        source = f"from {weights}" if weights is not None else f"(random weights, seed {seed or 0})"
        if as_json:
            out = r.to_json()
            out.update(equations=eq_file, weights=weights, seed=None if weights is not None else (seed or 0))
            click.echo(json.dumps(out))
        else:
            click.echo("\n".join(_cell_table(r, source)))
        return
    if (weights is None) == (torch_model is None):
        raise click.UsageError("pass exactly one of --weights FILE.npy or --torch-model FILE.pt")
    if weights is not None:
        if nonlinearity is not None or prefix is not None:
            raise click.UsageError("--nonlinearity and --prefix go with --torch-model")
        if activation is None:
            raise click.UsageError("--weights needs --activation NAME_OR_EXPR (e.g. tanh)")
        r = analyse_weights(activation, weights)
        if as_json:
            out = r.to_json()
            out["weights"] = weights
            click.echo(json.dumps(out))
        else:
            n = r.shape[0]
            click.echo("\n".join(_regime_table(r, f"gradproof bound: W ({n}x{n}) from {weights}")))
        return
    assert torch_model is not None
    m = analyse_torch_model(torch_model, activation, nonlinearity=nonlinearity, prefix=prefix)
    stacked = hasattr(m, "layers")
    if as_json:
        out = m.to_json()
        out["torch_model"] = torch_model
        click.echo(json.dumps(out))
    else:
        click.echo("\n".join(_stack_table(m, torch_model) if stacked else _model_table(m, torch_model)))
