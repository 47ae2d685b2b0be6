"""Every derived quantity against a reference, per step and per block, as a table of errors.

>>> from gradproof.numeric import init, random_sequence, verify
>>> p = init("gru", hidden=3, inputs=2, seed=0)
>>> report = verify("gru", p, random_sequence(6, 2, seed=1), reference="complex-step")
>>> report.ok
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ..derive.cells import Cell
from ..derive.jacobians import Derivation
from .gradients import input_jacobians, parameter_gradients, step_jacobians
from .references import TOLERANCES, Reference, get_reference
from .trajectory import prepare

__all__ = ["Check", "Verification", "verify", "compare", "state_blocks", "GATES", "VERIFY_STAGES"]

#: What :func:`verify` reports to its ``progress`` hook, in order.
VERIFY_STAGES = ("step Jacobians", "input Jacobians", "derived gradients", "reference gradients")

#: What a parameter's suffix names, for messages ("W_f" -> forget gate f).
GATES = {
    "lstm": {"f": "forget gate f", "i": "input gate i", "o": "output gate o", "c": "candidate c~"},
    "gru": {"u": "update gate u", "r": "reset gate r", "h": "candidate h~"},
    "gru-torch": {"r": "reset gate r", "z": "update gate z", "n": "candidate n",
                  "in": "candidate n (input bias)", "hn": "candidate n (recurrent bias)"},
}  # fmt: skip


def gate_of(cell: Cell, parameter: str) -> str:
    """The gate a parameter belongs to, e.g. ``W_f`` of the LSTM -> ``forget gate f``."""
    table = GATES.get(cell.name, GATES.get(cell.kind, {}))
    suffix = parameter.split("_", 1)[1] if "_" in parameter else ""
    if table:
        return table.get(suffix, "")
    return {"W_h": "recurrent matrix", "W_x": "input matrix", "b": "bias"}.get(parameter, "")


def state_blocks(cell: Cell, hidden: int) -> list[tuple[str, slice]]:
    """The named parts of the state: ``[("h", 0:n)]`` or ``[("h", 0:n), ("c", n:2n)]``."""
    names = [s.name[0] for s in cell.state_next]
    return [(nm, slice(k * hidden, (k + 1) * hidden)) for k, nm in enumerate(names)]


@dataclass(frozen=True)
class Check:
    """One compared quantity.

    Attributes
    ----------
    quantity : "step Jacobian", "input Jacobian" or "dJ/d<parameter>".
    block : which block (``dh/dc``) or gate (``forget gate f``); "" for a single block.
    max_abs : largest absolute error over all steps and entries.
    max_rel : largest error relative to the reference's largest entry at that step.
    worst_step : the step t (1-based) where the error is largest against its tolerance
        (None for parameter gradients, which sum over steps).
    rtol, atol : the tolerances; ``ok`` is |a - b| <= atol + rtol · max|b| (+ u) at every step.
    entries, not_judged : how many entries were compared, and how many of them the reference
        could not judge: its own uncertainty u there (a finite difference straddling a kink of
        relu or hard-sigmoid) exceeds the tolerance. Those entries pass when within the
        tolerance widened by u; a row whose worst entry is one of them reads "not judged".
    """

    quantity: str
    block: str
    max_abs: float
    max_rel: float
    worst_step: int | None
    rtol: float
    atol: float
    ok: bool
    entries: int = 0
    not_judged: int = 0

    @property
    def status(self) -> str:
        """``ok``, ``FAIL`` or ``not judged`` (within tolerance only thanks to the reference's
        own uncertainty, which exceeds the tolerance: the reference cannot tell)."""
        if not self.ok:
            return "FAIL"
        return "not judged" if self.not_judged else "ok"

    def describe(self) -> str:
        where = f", block {self.block}" if self.block else ""
        step = f" at step {self.worst_step}" if self.worst_step is not None else ""
        return (
            f"{self.quantity}{where}: max abs error {self.max_abs:.3e}, max rel error "
            f"{self.max_rel:.3e}{step} ({'FAILED' if not self.ok else self.status}, "
            f"rtol {self.rtol:g}, atol {self.atol:g}"
            + (f", {self.not_judged} of {self.entries} entries not judged" if self.not_judged else "")
            + ")"
        )


def compare(
    actual: np.ndarray,
    expected: np.ndarray,
    *,
    quantity: str,
    block: str = "",
    rtol: float,
    atol: float,
    per_step: bool = True,
    uncertainty: np.ndarray | None = None,
) -> Check:
    """Compare analytic ``actual`` with reference ``expected`` (leading axis = steps if per_step).

    ``uncertainty`` (shaped like ``expected``) is the reference's own error bound per entry; an
    entry passes when |a - b| <= atol + rtol · max|b| + u, and counts as *not judged* when u
    alone exceeds atol + rtol · max|b| and |a - b| does too.
    """
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    u = np.zeros(b.shape) if uncertainty is None else np.asarray(uncertainty, dtype=np.float64)
    if not per_step:
        a, b, u = a[None], b[None], u[None]
    T = a.shape[0]
    scale = np.abs(b).reshape(T, -1).max(axis=1, initial=0.0)
    tol = (atol + rtol * scale).reshape((T,) + (1,) * (a.ndim - 1))
    diff = np.abs(a - b)
    unsure = (u > tol) & (diff > tol)
    not_judged = int(np.count_nonzero(unsure))
    # judged entries against the plain tolerance; unjudged ones against the widened one
    beyond = np.where(unsure, np.maximum(diff - u, 0.0), diff)
    err = np.abs(a - b).reshape(T, -1).max(axis=1, initial=0.0)
    err_judged = beyond.reshape(T, -1).max(axis=1, initial=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(scale > 0, err / np.where(scale > 0, scale, 1.0), np.where(err > 0, np.inf, 0.0))
    badness = err_judged / (atol + rtol * scale)
    worst = int(np.argmax(err / (atol + rtol * scale)))
    ok = bool(np.all(np.isfinite(a)) and np.all(badness <= 1.0))
    return Check(
        quantity=quantity,
        block=block,
        max_abs=float(err.max(initial=0.0)),
        max_rel=float(rel.max(initial=0.0)),
        worst_step=worst + 1 if per_step else None,
        rtol=rtol,
        atol=atol,
        ok=ok,
        entries=int(a.size),
        not_judged=not_judged,
    )


@dataclass(frozen=True)
class Verification:
    """The result of :func:`verify`: one :class:`Check` per quantity and block."""

    cell: str
    reference: str
    hidden: int
    inputs: int
    steps: int
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def worst(self) -> Check:
        """The check furthest from (or closest to) its tolerance."""
        return max(self.checks, key=lambda c: c.max_rel / c.rtol if np.isfinite(c.max_rel) else np.inf)

    def table(self) -> str:
        """A plain-text table, one row per check."""
        head = f"{self.cell} vs {self.reference} (hidden {self.hidden}, inputs {self.inputs}, T {self.steps})"
        tols = sorted({(c.rtol, c.atol) for c in self.checks})
        head += "\ntolerance: |derived - reference| <= atol + rtol * max|reference| per step, " + ", ".join(
            f"rtol {r:g}, atol {a:g}" for r, a in tols
        )
        if any(c.not_judged for c in self.checks):
            head += (
                "\nnot judged: entries where the reference's own uncertainty exceeds the tolerance "
                "(a finite difference across a kink of the activation); they are not failures"
            )
        rows = [("quantity", "block", "max abs", "max rel", "worst step", "not judged", "ok")]
        for c in self.checks:
            rows.append(
                (
                    c.quantity,
                    c.block or "-",
                    f"{c.max_abs:.2e}",
                    f"{c.max_rel:.2e}",
                    "-" if c.worst_step is None else str(c.worst_step),
                    f"{c.not_judged}/{c.entries}" if c.not_judged else "-",
                    c.status,
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [head] + ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "cell": self.cell,
            "reference": self.reference,
            "hidden": self.hidden,
            "inputs": self.inputs,
            "steps": self.steps,
            "ok": self.ok,
            "checks": [
                {
                    "quantity": c.quantity,
                    "block": c.block,
                    "max_abs": c.max_abs,
                    "max_rel": c.max_rel if np.isfinite(c.max_rel) else str(c.max_rel),
                    "worst_step": c.worst_step,
                    "rtol": c.rtol,
                    "atol": c.atol,
                    "ok": c.ok,
                    "status": c.status,
                    "entries": c.entries,
                    "not_judged": c.not_judged,
                }
                for c in self.checks
            ],
        }

    def __str__(self) -> str:
        return self.table()

    def _repr_markdown_(self) -> str:
        """Jupyter: the table as Markdown, with the verdict and the tolerance."""
        status = "all within tolerance" if self.ok else "**FAILED**"
        unsure = sum(c.not_judged for c in self.checks)
        if self.ok and unsure:
            status += f" ({unsure} entries not judged: the reference cannot tell there)"
        tols = "; ".join(f"rtol {r:g}, atol {a:g}" for r, a in sorted({(c.rtol, c.atol) for c in self.checks}))
        lines = [
            f"**{self.cell}** vs **{self.reference}** (hidden {self.hidden}, inputs {self.inputs}, "
            f"T {self.steps}): {status}",
            "",
            f"tolerance: \\|derived − reference\\| ≤ atol + rtol · max\\|reference\\| ({tols})",
            "",
            "| quantity | block | max abs | max rel | worst step | not judged | status |",
            "|---|---|---:|---:|---:|---:|---|",
        ]
        for c in self.checks:
            step = "–" if c.worst_step is None else str(c.worst_step)
            unsure_c = f"{c.not_judged}/{c.entries}" if c.not_judged else "–"
            lines.append(
                f"| {c.quantity} | {c.block or '–'} | {c.max_abs:.2e} | {c.max_rel:.2e} | {step} | "
                f"{unsure_c} | {c.status} |"
            )
        return "\n".join(lines)


def verify(
    cell: Cell | str,
    params: Mapping[str, np.ndarray],
    xs: object,
    s0: object | None = None,
    *,
    reference: str | Reference = "torch",
    loss_weights: object | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    step: Derivation | None = None,
    progress: Callable[[str], None] | None = None,
) -> Verification:
    """Compare the derived step Jacobians, input Jacobians and BPTT gradients with a reference.

    Parameters
    ----------
    cell, params, xs, s0 : as for :func:`numeric.unroll`; ``xs`` is (T, m).
    reference : ``torch``, ``torch.nn``, ``complex-step``, ``finite-diff`` or an object with the
        :class:`numeric.references.Reference` methods.
    loss_weights : (T, n) weights of the loss J = Σ_t w_t · h_t; seeded random by default.
    rtol, atol : tolerances; default per reference (:data:`numeric.references.TOLERANCES`).
    step : a step-Jacobian derivation to check instead of gradproof's (your own formula). It
        replaces the step-Jacobian rows only; the BPTT gradients always use gradproof's derivation.
    progress : called with the name of each of the :data:`VERIFY_STAGES` as it starts (a
        progress bar's hook; nothing is printed here).

    Returns
    -------
    Verification, whose ``ok`` says whether every quantity is within tolerance and whose
    ``table()`` names the worst step and block of each quantity.
    """
    c, p, xs_a, s0_a, n, m = prepare(cell, params, xs, s0)
    ref = get_reference(reference)
    r_default, a_default = TOLERANCES.get(ref.name, (1e-10, 1e-13))
    rtol = r_default if rtol is None else float(rtol)
    atol = a_default if atol is None else float(atol)
    T = xs_a.shape[0]
    if loss_weights is None:
        loss_weights = np.random.default_rng(20130101).normal(size=(T, n))
    checks: list[Check] = []
    blocks = state_blocks(c, n)

    def unsure(key: str) -> np.ndarray | None:
        # the reference's own error bound (finite differences across a kink), when it has one
        return getattr(ref, "uncertainty", {}).get(key)

    say = progress or (lambda _stage: None)
    current = [VERIFY_STAGES[0]]
    if progress is not None and hasattr(ref, "progress"):
        ref.progress = lambda detail: say(f"{current[0]}: {detail}")  # e.g. "reference gradients: W_h 40/1024"
    say(VERIFY_STAGES[0])
    a = step_jacobians(c, p, xs_a, s0_a, step=step)
    b = ref.step_jacobians(c, p, xs_a, s0_a)
    u = unsure("step")
    for rn, rs in blocks:
        for cn, cs in blocks:
            name = f"d{rn}/d{cn}" if len(blocks) > 1 else ""
            checks.append(
                compare(a[:, rs, cs], b[:, rs, cs], quantity="step Jacobian", block=name, rtol=rtol,
                        atol=atol, uncertainty=None if u is None else u[:, rs, cs])
            )  # fmt: skip
    current[0] = VERIFY_STAGES[1]
    say(VERIFY_STAGES[1])
    a = input_jacobians(c, p, xs_a, s0_a)
    b = ref.input_jacobians(c, p, xs_a, s0_a)
    u = unsure("input")
    for rn, rs in blocks:
        name = f"d{rn}/dx" if len(blocks) > 1 else ""
        checks.append(compare(a[:, rs], b[:, rs], quantity="input Jacobian", block=name, rtol=rtol,
                              atol=atol, uncertainty=None if u is None else u[:, rs]))  # fmt: skip
    current[0] = VERIFY_STAGES[2]
    say(VERIFY_STAGES[2])
    ga = parameter_gradients(c, p, xs_a, s0_a, loss_weights=loss_weights)
    current[0] = VERIFY_STAGES[3]
    say(VERIFY_STAGES[3])
    gb = ref.parameter_gradients(c, p, xs_a, s0_a, loss_weights=loss_weights)
    for name in c.parameter_names:
        checks.append(
            compare(
                ga[name], gb[name], quantity=f"dJ/d{name}", block=gate_of(c, name),
                rtol=rtol, atol=atol, per_step=False, uncertainty=unsure(name),
            )
        )  # fmt: skip
    if progress is not None and hasattr(ref, "progress"):
        ref.progress = None
    return Verification(c.name, ref.name, n, m, T, tuple(checks))

