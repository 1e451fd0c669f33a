"""Keras 3 stores weights by position: the names its built-in layers and optimizers give them, shape-checked."""

# A `.weights.h5` holds `<layer>/vars/<i>` in the order the layer created its variables
# (keras/src/layers/layer.py, save_own_variables: trainable ones first, then the rest). The names below are
# that order for Keras' own layers (keras/src/layers/**) and optimizers (keras/src/optimizers/*.py, build());
# a layer or optimizer not listed, or weights whose count or shapes do not fit, keep positional names.

from __future__ import annotations

import re
from collections.abc import Callable

Shape = tuple[int, ...]

_KERNEL_BIAS = ("kernel", "bias")
_RNN_CELL = ("kernel", "recurrent_kernel", "bias")
_CONV = ("conv1d", "conv2d", "conv3d", "conv1d_transpose", "conv2d_transpose", "conv3d_transpose",
         "depthwise_conv1d", "depthwise_conv2d")


def to_snake_case(name: str) -> str:
    """keras/src/utils/naming.py to_snake_case: 'BatchNormalization' -> 'batch_normalization'."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def class_key(name: str) -> str:
    """The table key of a snake-case class name or a default layer name: 'dense_3' -> 'dense'."""
    return re.sub(r"_\d+$", "", name)


def _flag(config: dict | None, key: str) -> bool | None:
    value = (config or {}).get(key)
    return value if isinstance(value, bool) else None


def _kernel_bias(shapes: list[Shape], config: dict | None) -> tuple[str, ...] | None:
    use_bias = _flag(config, "use_bias")
    names = _KERNEL_BIAS[: len(shapes)]
    if not shapes or len(shapes) > 2 or (use_bias is not None and len(shapes) != 1 + use_bias):
        return None
    if len(shapes[0]) < 2 or (len(shapes) == 2 and len(shapes[1]) >= len(shapes[0])):
        return None
    return names


def _dense(shapes: list[Shape], config: dict | None) -> tuple[str, ...] | None:
    names = _kernel_bias(shapes, config)
    if names is None or len(shapes[0]) != 2 or (len(shapes) == 2 and shapes[1] != shapes[0][-1:]):
        return None
    return names


def _scale_center(shapes: list[Shape], config: dict | None, extra: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """gamma (when scale), beta (when center), then `extra`: BatchNormalization, LayerNormalization."""
    scale, center = _flag(config, "scale"), _flag(config, "center")
    if scale is None or center is None:  # without the config only the full set is unambiguous
        names = ("gamma", "beta") + extra
    else:
        names = ("gamma",) * scale + ("beta",) * center + extra
    if len(names) != len(shapes) or len(set(shapes)) != 1:
        return None
    return names


def _rnn_cell(shapes: list[Shape], config: dict | None) -> tuple[str, ...] | None:
    if len(shapes) not in (2, 3) or len(shapes[0]) != 2 or len(shapes[1]) != 2 or shapes[0][1] != shapes[1][1]:
        return None
    if len(shapes) == 3 and shapes[2][-1:] != shapes[0][1:]:
        return None
    return _RNN_CELL[: len(shapes)] if _flag(config, "use_bias") in (None, len(shapes) == 3) else None


def _fixed(names: tuple[str, ...], check: Callable[[list[Shape]], bool] = lambda s: True):
    def rule(shapes: list[Shape], config: dict | None) -> tuple[str, ...] | None:
        return names if len(shapes) == len(names) and check(shapes) else None

    return rule


LAYER_RULES: dict[str, Callable[[list[Shape], dict | None], tuple[str, ...] | None]] = {
    "dense": _dense,
    "einsum_dense": _kernel_bias,
    **{conv: _kernel_bias for conv in _CONV},
    "separable_conv1d": _fixed(("depthwise_kernel", "pointwise_kernel", "bias")),
    "separable_conv2d": _fixed(("depthwise_kernel", "pointwise_kernel", "bias")),
    "batch_normalization": lambda s, c: _scale_center(s, c, ("moving_mean", "moving_variance")),
    "layer_normalization": _scale_center,
    "group_normalization": _scale_center,
    "embedding": _fixed(("embeddings",), lambda s: len(s[0]) == 2),
    "lstm_cell": _rnn_cell,
    "gru_cell": _rnn_cell,
    "simple_rnn_cell": _rnn_cell,
    "p_re_lu": _fixed(("alpha",)),
    "normalization": _fixed(("mean", "variance", "count"), lambda s: s[0] == s[1] and s[2] == ()),
}


def layer_variable_names(class_name: str | None, shapes: list[Shape], config: dict | None = None
                         ) -> tuple[str, ...] | None:
    """The names of a layer's weights in stored order, or None when the class is unknown or they do not fit.

    >>> layer_variable_names("dense", [(4, 3), (3,)])
    ('kernel', 'bias')
    """
    rule = LAYER_RULES.get(class_key(to_snake_case(class_name))) if class_name else None
    return rule(list(shapes), config) if rule else None


# Optimizer variables after `iteration` (and `learning_rate` unless it is a schedule): blocks of slots, each
# block one `add_optimizer_variables(vars, names)` call, its names interleaved per trainable variable.
Blocks = tuple[tuple[str, ...], ...]
_MOMENTUM_VELOCITY: Blocks = (("momentum", "velocity"),)


def _adam(c: dict) -> Blocks:
    return _MOMENTUM_VELOCITY + ((("velocity_hat",),) if c.get("amsgrad") else ())


def _rmsprop(c: dict) -> Blocks:
    return ((("velocity",),) + ((("momentum",),) if c.get("momentum") else ())
            + ((("average_gradient",),) if c.get("centered") else ()))


OPTIMIZER_SLOTS: dict[str, tuple[Callable[[dict], Blocks], tuple[dict, ...]]] = {
    # key: (blocks from the optimizer's config, the configs to try when only the file is known)
    "adam": (_adam, ({}, {"amsgrad": True})),
    "adam_w": (_adam, ({}, {"amsgrad": True})),
    "lamb": (lambda c: _MOMENTUM_VELOCITY, ({},)),
    "nadam": (lambda c: _MOMENTUM_VELOCITY, ({},)),  # plus a trailing u_product scalar, left unnamed
    "sgd": (lambda c: (("momentum",),) if c.get("momentum") else (), ({}, {"momentum": 0.9})),
    "rm_sprop": (_rmsprop, ({}, {"momentum": 0.9}, {"centered": True}, {"momentum": 0.9, "centered": True})),
    "rmsprop": (_rmsprop, ({}, {"momentum": 0.9}, {"centered": True}, {"momentum": 0.9, "centered": True})),
    "adagrad": (lambda c: (("accumulator",),), ({},)),
    "adadelta": (lambda c: (("accumulated_grad", "accumulated_delta_var"),), ({},)),
    "adamax": (lambda c: (("momentum", "norm"),), ({},)),
    "ftrl": (lambda c: (("accumulator", "linear"),), ({},)),
    "lion": (lambda c: (("momentum",),), ({},)),
}


def slot_layout(class_name: str | None, config: dict | None, num_slots: int, num_weights: int
                ) -> list[tuple[int, str]] | None:
    """(trainable weight index, slot name) for each slot variable in stored order, or None when unknown.

    `config` is the optimizer's config from a `.keras` file (None: try the settings a plain file could have);
    `num_slots` the optimizer variables after iteration and learning_rate. Several fitting layouts that name
    the slots differently mean the file alone cannot tell: None.
    """
    entry = OPTIMIZER_SLOTS.get(class_key(to_snake_case(class_name))) if class_name else None
    if entry is None or num_weights == 0:
        return None
    blocks_of, guesses = entry
    found = []
    for settings in ([config] if config is not None else list(guesses)):
        blocks = ((("average",),) if settings.get("use_ema") else ()) + (
            (("gradient_accumulator",),) if settings.get("gradient_accumulation_steps") else ()) + blocks_of(settings)
        layout = [(i, slot) for block in blocks for i in range(num_weights) for slot in block]
        if len(layout) <= num_slots <= len(layout) + (1 if to_snake_case(class_name) == "nadam" else 0):
            found.append(layout)
    return found[0] if len(found) == 1 or (found and all(f == found[0] for f in found)) else None


def slot_name(optimizer: str, weight_path: str, slot: str) -> str:
    """keras/src/optimizers/base_optimizer.py add_variable_from_reference: 'adam/sequential_dense_kernel_momentum'."""
    return f"{optimizer}/{weight_path.replace('/', '_')}_{slot}"
