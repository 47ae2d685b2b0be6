"""Tests of derive.cells: names, validation, shapes, counts, immutability and the recurrences.

Expected values come from CONTRACT.md ("Shared names": cell names, parameter keys and shapes)
and docs/math.md §1 (vanilla RNN), §3 (LSTM), §4 (GRU, both conventions, parameter counts).
"""

from __future__ import annotations

import dataclasses

import pytest
import sympy as sp

from gradproof import derive
from gradproof.derive import GRU, LSTM, RNN, GradproofError, activation, cell
from gradproof.derive.equality import difference_is_zero

from .conftest import ALL_CELLS, had, one_minus, sigmoid

# ----------------------------------------------------------------------------------------------
# Names
# ----------------------------------------------------------------------------------------------


def test_cli_names_are_the_contracts():
    # CONTRACT.md, "Cell names (CLI and derive.cell(name))".
    assert derive.CELL_NAMES == ("rnn-tanh", "rnn-sigmoid", "rnn-relu", "lstm", "gru", "gru-torch")


# name, class, kind, activation (RNN only), reset (GRU only)
CELL_TABLE = [
    ("rnn-tanh", RNN, "rnn", "tanh", None),
    ("rnn-sigmoid", RNN, "rnn", "sigmoid", None),
    ("rnn-relu", RNN, "rnn", "relu", None),
    ("rnn-hard_sigmoid", RNN, "rnn", "hard_sigmoid", None),
    ("lstm", LSTM, "lstm", None, None),
    ("gru", GRU, "gru", None, "before"),
    ("gru-torch", GRU, "gru", None, "after"),
]


@pytest.mark.parametrize(("name", "cls", "kind", "act", "reset"), CELL_TABLE, ids=[r[0] for r in CELL_TABLE])
def test_cell_of_every_name(name, cls, kind, act, reset):
    c = cell(name)
    assert type(c) is cls
    assert c.kind == kind
    if act is not None:
        assert c.activation.name == act
    if reset is not None:
        assert c.reset == reset
    if name in derive.CELL_NAMES:
        assert c.name == name
    # the name a cell reports parses back to the same cell
    assert cell(c.name) == c


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("LSTM", LSTM()),
        ("  gru  ", GRU(reset="before")),
        ("gru-after", GRU(reset="after")),
        ("RNN-TANH", RNN("tanh")),
        ("rnn[tanh(3*x)]", RNN("tanh(3*x)")),
    ],
    ids=["upper-case", "spaces", "gru-after", "upper-rnn", "rnn-user-expression"],
)
def test_cell_aliases(alias, expected):
    assert cell(alias) == expected


def test_cell_passes_a_cell_through():
    c = LSTM()
    assert cell(c) is c


# bad name, fragments the message must contain
BAD_NAMES = [
    ("foo", ["'foo'", *derive.CELL_NAMES]),
    ("", ["''", *derive.CELL_NAMES]),
    ("lstm2", ["'lstm2'", *derive.CELL_NAMES]),
    ("rnn", ["'rnn'", *derive.CELL_NAMES]),
    ("rnn[", ["'rnn['", *derive.CELL_NAMES]),
    ("gru_torch", ["'gru_torch'", *derive.CELL_NAMES]),
    # an unknown activation: the message names the cell and the offending activation
    ("rnn-foo", ["'rnn-foo'", "foo"]),
    ("rnn-", ["'rnn-'", "tanh", "sigmoid", "relu"]),
]


@pytest.mark.parametrize(("bad", "fragments"), BAD_NAMES, ids=[repr(b) for b, _ in BAD_NAMES])
def test_unknown_cell_names_are_rejected_with_the_valid_names(bad, fragments):
    with pytest.raises(GradproofError) as info:
        cell(bad)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)


@pytest.mark.parametrize("bad", [3, None, 1.5, ["lstm"]], ids=["int", "None", "float", "list"])
def test_non_string_cell_names_are_rejected(bad):
    with pytest.raises(GradproofError, match="string"):
        cell(bad)


def test_gru_rejects_an_unknown_reset_convention():
    with pytest.raises(GradproofError) as info:
        GRU(reset="sideways")
    message = str(info.value)
    for fragment in ("'sideways'", "'before'", "'after'"):
        assert fragment in message


def test_gradproof_error_is_a_value_error():
    # CONTRACT.md: GradproofError(ValueError)
    with pytest.raises(ValueError):
        cell("nope")


# ----------------------------------------------------------------------------------------------
# Shapes and counts
# ----------------------------------------------------------------------------------------------


def expected_shapes(name: str, n: int, m: int) -> dict[str, tuple[int, ...]]:
    """CONTRACT.md's parameter dicts, in the documented order."""
    W, U, b = (n, n), (n, m), (n,)
    if name.startswith("rnn-"):
        return {"W_h": W, "W_x": U, "b": b}
    if name == "lstm":
        return {
            **{f"W_{g}": W for g in "fioc"},
            **{f"U_{g}": U for g in "fioc"},
            **{f"b_{g}": b for g in "fioc"},
        }
    if name == "gru":
        return {**{f"W_{g}": W for g in "urh"}, **{f"U_{g}": U for g in "urh"}, **{f"b_{g}": b for g in "urh"}}
    return {
        **{f"W_{g}": W for g in "rzn"},
        **{f"U_{g}": U for g in "rzn"},
        "b_r": b,
        "b_z": b,
        "b_in": b,
        "b_hn": b,
    }


SIZES = [(1, 1), (1, 3), (3, 1), (2, 5)]


@pytest.mark.parametrize("n,m", SIZES, ids=[f"n{n}-m{m}" for n, m in SIZES])
@pytest.mark.parametrize("name", ALL_CELLS)
def test_parameter_shapes(name, n, m):
    shapes = cell(name).parameter_shapes(n, m)
    expected = expected_shapes(name, n, m)
    assert list(shapes.items()) == list(expected.items())  # same keys, same order
    # hidden = inputs = 1 still gives 2-D matrices and 1-D biases
    for key, shape in shapes.items():
        assert len(shape) == (1 if key.startswith("b") else 2), (key, shape)


def math_md_count(name: str, n: int, m: int) -> int:
    """Parameter counts per layer, docs/math.md §4 (and §1 for the vanilla RNN)."""
    if name.startswith("rnn-"):
        return n * n + n * m + n  # W_h, W_x and one summed bias b (docs/math.md §1: b_ih + b_hh)
    if name == "lstm":
        return 4 * (n * n + n * m + n)  # docs/math.md §4
    if name == "gru":
        return 3 * (n * n + n * m + n)  # docs/math.md §4
    # gru-torch: docs/math.md §4 says b_in and b_hn are not redundant (b_hn is gated by r), so the
    # n-chunk keeps both biases while r and z keep one summed bias each: b_r, b_z, b_in, b_hn,
    # i.e. 4n biases instead of 3n -> 3(n² + nm) + 4n.
    return 3 * (n * n + n * m) + 4 * n


@pytest.mark.parametrize("n,m", SIZES, ids=[f"n{n}-m{m}" for n, m in SIZES])
@pytest.mark.parametrize("name", ALL_CELLS)
def test_parameter_count_matches_math_md(name, n, m):
    assert cell(name).parameter_count(n, m) == math_md_count(name, n, m)


@pytest.mark.parametrize(("name", "size"), [("rnn-tanh", 3), ("lstm", 6), ("gru", 3), ("gru-torch", 3)])
def test_state_size(name, size):
    # CONTRACT.md: n, or 2n for the LSTM (state [h; c])
    assert cell(name).state_size(3) == size


@pytest.mark.parametrize("name", ALL_CELLS)
def test_explicit_view_matches_the_shapes(name):
    c = cell(name)
    ex = c.explicit(2, 3)
    assert ex.state.shape == (c.state_size(2), 1)
    assert ex.next_state.shape == (c.state_size(2), 1)
    assert ex.x.shape == (3, 1)
    assert list(ex.parameters) == list(c.parameter_shapes(2, 3))
    for key, shape in c.parameter_shapes(2, 3).items():
        assert ex.parameters[key].shape == (shape if len(shape) == 2 else (shape[0], 1))


@pytest.mark.parametrize(
    ("hidden", "inputs"), [(0, 1), (1, 0), (-2, 1), (1.5, 1), ("2", 1)], ids=["n0", "m0", "neg", "float", "str"]
)
def test_explicit_rejects_bad_sizes(hidden, inputs):
    with pytest.raises(GradproofError, match="positive integer"):
        LSTM().explicit(hidden, inputs)


# ----------------------------------------------------------------------------------------------
# Immutability and equality
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("c", "attribute", "value"),
    [(RNN("tanh"), "activation", "relu"), (GRU(), "reset", "after"), (LSTM(), "kind", "rnn")],
    ids=["rnn", "gru", "lstm"],
)
def test_cells_are_frozen(c, attribute, value):
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(c, attribute, value)


def test_equal_cells_hash_equal():
    pairs = [
        (RNN("tanh"), cell("rnn-tanh")),
        (RNN("tanh"), RNN(activation("tanh"))),
        (RNN("hard_sigmoid"), cell("rnn-hard_sigmoid")),
        (RNN("tanh(3*x)"), RNN("tanh(3*x)")),
        (LSTM(), cell("lstm")),
        (GRU(), GRU(reset="before")),
        (GRU(reset="after"), cell("gru-torch")),
    ]
    for a, b in pairs:
        assert a == b and hash(a) == hash(b), (a, b)
    assert len({cell(name) for name in ALL_CELLS}) == len(ALL_CELLS)
    assert RNN("tanh") != RNN("sigmoid")
    assert GRU(reset="before") != GRU(reset="after")
    assert LSTM() != GRU()


# ----------------------------------------------------------------------------------------------
# The recurrences themselves, written again from docs/math.md (n = 2, m = 2)
# ----------------------------------------------------------------------------------------------


def _pointwise(v: sp.Matrix, f) -> sp.Matrix:
    return v.applyfunc(f)


def math_md_next_state(name: str, n: int, ex) -> sp.Matrix:
    """s^{(t)} from docs/math.md §1, §3, §4 with the ExplicitCell's symbols (not its formulas)."""
    P = ex.parameters
    x = ex.x
    h = ex.state[:n, :]
    tanh = lambda v: _pointwise(v, sp.tanh)  # noqa: E731
    if name.startswith("rnn-"):
        z = P["W_h"] * h + P["W_x"] * x + P["b"]  # docs/math.md §1
        sigma = {
            "tanh": sp.tanh,
            "sigmoid": lambda e: 1 / (1 + sp.exp(-e)),
            # relu and PyTorch's hardsigmoid (docs/math.md §1), as max/min, rewritten piecewise
            "relu": lambda e: sp.Max(0, e).rewrite(sp.Piecewise),
            "hard_sigmoid": lambda e: sp.Min(sp.Max(e / 6 + sp.Rational(1, 2), 0), 1).rewrite(sp.Piecewise),
        }[name[4:]]
        return _pointwise(z, sigma)
    if name == "lstm":  # docs/math.md §3
        c = ex.state[n:, :]
        f = sigmoid(P["W_f"] * h + P["U_f"] * x + P["b_f"])
        i = sigmoid(P["W_i"] * h + P["U_i"] * x + P["b_i"])
        o = sigmoid(P["W_o"] * h + P["U_o"] * x + P["b_o"])
        g = tanh(P["W_c"] * h + P["U_c"] * x + P["b_c"])
        c_new = had(f, c) + had(i, g)
        return sp.Matrix.vstack(had(o, tanh(c_new)), c_new)  # state [h; c], h first
    if name == "gru":  # docs/math.md §4, lecture form
        u = sigmoid(P["W_u"] * h + P["U_u"] * x + P["b_u"])
        r = sigmoid(P["W_r"] * h + P["U_r"] * x + P["b_r"])
        h_tilde = tanh(P["W_h"] * had(r, h) + P["U_h"] * x + P["b_h"])
        return had(one_minus(u), h) + had(u, h_tilde)
    # docs/math.md §4, PyTorch form (reset after the matmul)
    r = sigmoid(P["W_r"] * h + P["U_r"] * x + P["b_r"])
    z = sigmoid(P["W_z"] * h + P["U_z"] * x + P["b_z"])
    cand = tanh(P["U_n"] * x + P["b_in"] + had(r, P["W_n"] * h + P["b_hn"]))
    return had(one_minus(z), cand) + had(z, h)


@pytest.mark.parametrize("name", ALL_CELLS)
def test_explicit_recurrence_is_math_md(name):
    c = cell(name)
    ex = c.explicit(2, 2)
    assert difference_is_zero(ex.next_state, math_md_next_state(name, 2, ex))


def test_lstm_state_is_h_then_c():
    # CONTRACT.md / docs/math.md §3: s = [h; c], h first
    ex = LSTM().explicit(2, 1)
    names = [str(s) for s in ex.state]
    assert names[:2] == ["h0", "h1"] and names[2:] == ["c0", "c1"]


@pytest.mark.parametrize("name", ALL_CELLS)
def test_definitions_and_equations_agree(name):
    c = cell(name)
    assert len(c.equations) == len(c.definitions) > 0
    for eq, (lhs, rhs) in zip(c.equations, c.definitions):
        assert isinstance(eq, sp.Equality) and eq.lhs == lhs and eq.rhs == rhs
        assert lhs.shape == rhs.shape
    # the state comes last and every parameter occurs in the definitions
    assert tuple(lhs for lhs, _ in c.definitions[-len(c.state_next) :]) in (
        c.state_next,
        tuple(reversed(c.state_next)),
    )
    assert list(c.parameter_symbols()) == list(c.parameter_shapes(1, 1))
