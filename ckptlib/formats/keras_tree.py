"""A Keras 3 weights file's tree (`<saveable>/vars/<i>`) and the Keras variable paths it implies."""

# keras/src/saving/saving_lib.py (_save_state, _save_container_state, H5IOStore) writes one `vars` group per
# object that owns variables, at the attribute path that reaches it: `layers/<snake-case class>[_N]` for the
# layers of a Sequential or Functional model, `<attribute>` otherwise (`layers/lstm/cell`), `optimizer` for
# the optimizer. Each `vars` group carries the object's `name`; its datasets are "0", "1", … in creation order.
# A variable's Keras path is the name scopes it was created in: the names of the objects above it, except
# that a Functional model's layers are built outside any scope (`hidden/kernel`, not `functional/hidden/kernel`,
# also when that Functional model sits inside a Sequential one).

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ckptlib.formats import keras_names
from ckptlib.formats.base import variable_info
from ckptlib.formats.h5io import dtype_name, nbytes_of
from ckptlib.formats.types import VariableInfo

_INPUT_LAYER = re.compile(r"^input_layer(_\d+)?$")  # Functional.layers starts with its InputLayer(s)
_NON_TRAINABLE = {"moving_mean", "moving_variance"}  # BatchNormalization's statistics
_NON_TRAINABLE_CLASSES = {"normalization"}  # every weight of a Normalization layer is a statistic


@dataclass(frozen=True)
class Stored:
    """One dataset of the file: where it is and what it holds."""

    key: str  # the dataset path, e.g. 'layers/dense/vars/0'
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    offset: int  # its data's offset in the file: the order Keras wrote it in (-1 when not contiguous)
    source: int = 0  # which shard file holds it


@dataclass
class Node:
    """An object that owns a `vars` group: a layer, a model, the optimizer."""

    path: str  # the group holding `vars` ('' for the model itself)
    name: str | None  # the object's own name, from the `vars` group's attribute
    functional: bool  # a Functional model: its layers' variables are not under its name
    stored: list[Stored] = field(default_factory=list)

    @property
    def order(self) -> int:
        offsets = [s.offset for s in self.stored if s.offset >= 0]
        return min(offsets) if offsets else 1 << 62


def scan(h5file, source: int = 0, nodes: dict[str, Node] | None = None) -> dict[str, Node]:
    """Every object of a Keras 3 weights file (merged into `nodes` for the shards of one save), by path."""
    nodes = {} if nodes is None else nodes
    pending = [("", h5file)]
    while pending:
        path, group = pending.pop()
        children = {name: group.get(name) for name in group.keys()}
        vars_group = children.pop("vars", None)
        if vars_group is not None and hasattr(vars_group, "keys"):
            layers = children.get("layers")
            functional = hasattr(layers, "keys") and any(_INPUT_LAYER.match(n) for n in layers.keys())
            name = vars_group.attrs.get("name")
            node = nodes.setdefault(path, Node(path, _text(name), functional))
            node.functional = node.functional or functional
            node.name = node.name or _text(name)  # a later shard's part of an object carries no name
            for key in vars_group.keys():
                dataset = vars_group.get(key)
                if hasattr(dataset, "shape"):
                    node.stored.append(_stored(_join(path, "vars", key), dataset, source))
        pending.extend((_join(path, n), g) for n, g in sorted(children.items(), reverse=True) if hasattr(g, "keys"))
    for node in nodes.values():
        node.stored.sort(key=lambda s: _index(s.key))
    return nodes


def _stored(key: str, dataset, source: int) -> Stored:
    try:
        offset = dataset.id.get_offset()
    except (OSError, ValueError):
        offset = None
    return Stored(key, dtype_name(dataset), tuple(int(d) for d in dataset.shape), nbytes_of(dataset),
                  -1 if offset is None else int(offset), source)


def _text(value) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


def _index(key: str) -> tuple[int, str]:
    leaf = key.rsplit("/", 1)[-1]
    return (int(leaf), "") if leaf.isdigit() else (1 << 30, leaf)


@dataclass(frozen=True)
class KerasConfig:
    """What a `.keras` file's config.json says that naming needs; json only, nothing in it is executed."""

    model_class: str | None = None
    layers: dict[str, tuple[str, dict]] = field(default_factory=dict)  # layer name -> (class name, its config)
    frozen: frozenset[str] = frozenset()  # names of layers with trainable false (and every layer inside them)
    optimizer_class: str | None = None
    optimizer_config: dict | None = None


def read_config(config: dict) -> KerasConfig:
    """The layer classes, configs and trainable flags of a parsed config.json (unknown keys ignored)."""
    layers: dict[str, tuple[str, dict]] = {}
    frozen: set[str] = set()

    def visit(value, inside_frozen: bool) -> None:
        if isinstance(value, list):
            for item in value:
                visit(item, inside_frozen)
            return
        if not isinstance(value, dict):
            return
        inner = value.get("config")
        if isinstance(value.get("class_name"), str) and isinstance(inner, dict) and isinstance(inner.get("name"), str):
            inside_frozen = inside_frozen or inner.get("trainable") is False
            layers.setdefault(inner["name"], (value["class_name"], inner))
            if inside_frozen:
                frozen.add(inner["name"])
        for key, item in value.items():
            if key not in ("compile_config", "build_config"):
                visit(item, inside_frozen)

    visit({k: v for k, v in config.items() if k != "compile_config"}, False)
    optimizer = (config.get("compile_config") or {}).get("optimizer")
    optimizer = optimizer if isinstance(optimizer, dict) else {}
    opt_config = optimizer.get("config")
    return KerasConfig(config.get("class_name") if isinstance(config.get("class_name"), str) else None, layers,
                       frozenset(frozen), optimizer.get("class_name") if isinstance(optimizer.get("class_name"), str)
                       else None, opt_config if isinstance(opt_config, dict) else None)


def name_variables(nodes: dict[str, Node], config: KerasConfig | None = None) -> tuple[VariableInfo, ...]:
    """A VariableInfo per dataset, named by Keras path where the file (and config) allow, sorted by key."""
    scopes: dict[str, list[str]] = {}
    infos: list[VariableInfo] = []
    weights: list[tuple[VariableInfo, bool]] = []  # model weights in the order Keras wrote them, trainable?
    optimizers = []
    for node in sorted(nodes.values(), key=lambda n: (n.path.count("/") if n.path else -1, n.order, n.path)):
        scopes[node.path] = _scope(node, nodes, scopes, config)
    for node in sorted(nodes.values(), key=lambda n: (n.order, n.path)):
        if node.path == "optimizer" or node.path.startswith("optimizer/"):
            optimizers.append(node)
            continue
        for info, trainable in _layer_infos(node, scopes[node.path], config, _frozen(node, nodes, config)):
            infos.append(info)
            weights.append((info, trainable))
    for node in optimizers:
        infos.extend(_optimizer_infos(node, [w for w, trainable in weights if trainable], config))
    return tuple(sorted(infos, key=lambda i: i.name))


def _scope(node: Node, nodes: dict[str, Node], scopes: dict[str, list[str]], config: KerasConfig | None) -> list[str]:
    """The name scopes `node`'s variables were created in: its owners' names, then its own."""
    if not node.path:
        functional = node.functional or (config is not None and config.model_class == "Functional")
        return [] if functional or not node.name else [node.name]
    parts = node.path.split("/")
    for cut in range(len(parts) - 1, -1, -1):
        owner = nodes.get("/".join(parts[:cut]))
        if owner is not None:
            # A Functional model's layers were built when first called, outside any model: no scope above them.
            outer = [] if owner.functional else scopes.get(owner.path, [])
            return outer + ([node.name] if node.name else [parts[-1]])
    return [node.name or parts[-1]]


def _layer_infos(node: Node, scope: list[str], config: KerasConfig | None, frozen: bool):
    shapes = [s.shape for s in node.stored]
    known = config.layers.get(node.name) if config is not None and node.name else None
    parts = node.path.split("/")
    candidates = [(known[0], known[1], " from the config")] if known is not None else []
    if len(parts) >= 2 and parts[-2] == "layers":  # a container entry: named after the layer's class
        candidates.append((parts[-1], None, ""))
    candidates.append((node.name, None, ""))
    names, label, source = None, None, ""
    for candidate, layer_config, where in candidates:
        if candidate:
            label = label or (candidate if where else keras_names.class_key(candidate))
            names = keras_names.layer_variable_names(candidate, shapes, layer_config)
            if names is not None:
                label, source = (candidate if where else keras_names.class_key(candidate)), where
                break
    statistics = keras_names.class_key(keras_names.to_snake_case(label or "")) in _NON_TRAINABLE_CLASSES
    for position, stored in enumerate(node.stored):
        if names is None:
            full = "/".join(scope + ["vars", str(position)])
            note = f"named by position: no variable names known for {label or 'this layer'}'s weights"
            trainable = not frozen
        else:
            full = "/".join(scope + [names[position]])
            note = f"named by position{source}: {label} weights are {', '.join(names)}"
            trainable = not frozen and not statistics and names[position] not in _NON_TRAINABLE
        info = variable_info(stored.key, stored.dtype, stored.shape, stored.nbytes, full_name=full, kind="model",
                             note=note)
        yield info, trainable


def _frozen(node: Node, nodes: dict[str, Node], config: KerasConfig | None) -> bool:
    """Set trainable=False in the config, itself or an object above it (an LSTM's cell has no config of its own)."""
    if config is None or not config.frozen:
        return False
    parts = node.path.split("/")
    owners = (nodes.get("/".join(parts[:cut])) for cut in range(len(parts), 0, -1))
    return any(owner is not None and owner.name in config.frozen for owner in owners)


def _optimizer_infos(node: Node, trainable: list[VariableInfo], config: KerasConfig | None) -> list[VariableInfo]:
    name = node.name or "optimizer"
    stored = node.stored
    named: dict[int, tuple[str, str, str | None, str | None]] = {}  # position -> (full name, kind, slot of, note)
    head = 0
    if stored and stored[0].shape == () and stored[0].dtype.startswith(("int", "uint")):
        named[0] = (f"{name}/iteration", "counter", None, None)
        head = 1
    class_name = config.optimizer_class if config is not None and config.optimizer_class else name
    opt_config = config.optimizer_config if config is not None else None
    for with_rate in (True, False):
        start = head + with_rate
        rate = stored[head] if len(stored) > head else None
        if with_rate and (rate is None or rate.shape != () or not rate.dtype.startswith("float")):
            continue
        layout = keras_names.slot_layout(class_name, opt_config, len(stored) - start, len(trainable))
        if layout is None or any(stored[start + i].shape != trainable[w].shape for i, (w, _) in enumerate(layout)):
            continue
        if with_rate:
            named[head] = (f"{name}/learning_rate", "optimizer", None, None)
        slots = ", ".join(dict.fromkeys(slot for _, slot in layout))
        note = f"named by position: {class_name}'s slots ({slots}) for each trainable weight in order"
        for i, (w, slot) in enumerate(layout):
            weight = trainable[w].display_name
            named[start + i] = (keras_names.slot_name(name, weight, slot), "optimizer", weight, note)
        break
    infos = []
    for position, s in enumerate(stored):
        full, kind, slot_of, note = named.get(position, (None, "optimizer", None, None))
        infos.append(variable_info(s.key, s.dtype, s.shape, s.nbytes, full_name=full, kind=kind, slot_of=slot_of,
                                   note=note))
    return infos
