"""Component registry: loads plugins from entry points and builds components by name.

Each plugin yields :class:`ComponentSpec` records from its ``framework_components`` hook.
The registry checks every params schema against the JSON Schema metaschema and builds
components from validated params with the schema's defaults filled in — defaults live
in the schemas and nowhere else.

A broken plugin never takes down the others: an import error, an incompatible plugin
API version, an invalid schema or a name registered twice is recorded as a
:class:`LoadFailure` (``framework list`` shows them) and becomes an error naming the
distribution only when a recipe uses the affected component.
"""

from __future__ import annotations

import copy
import difflib
import inspect
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any, Callable, Iterable, Mapping, Optional

import jsonschema
import pluggy

from framework import hookspecs

KINDS: dict[str, str] = {
    "image_encoder": "turns images (and an optional patch mask) into tokens",
    "text_encoder": "turns token ids into contextual token features",
    "fusion": "mixes image and text features into a pair representation",
    "decoder": "maps encoded views back to per-position features for reconstruction",
    "head": "small projection on top of features (MLP, linear, predictor)",
    "task_head": "a downstream classifier from a pooled feature to class logits",
    "image_masking": "chooses which image patches of a view are masked",
    "text_masking": "chooses which caption tokens of a view are masked",
    "target": "what a reconstruction objective predicts (pixels, codes, teacher features)",
    "objective": "a weighted loss computed from one or more views",
    "teacher": "a gradient-free copy of the student updated after each step",
    "dataset": "a source of image-caption (or unpaired) samples",
    "tokenizer": "turns captions into token ids",
    "image_tokenizer": "turns images into discrete codes (VQ-VAE, dVAE)",
    "evaluator": "an evaluation task run by `framework eval`",
    "augment": "a training-time change of a sample's image (and its boxes and captions)",
    "optimizer": "updates the parameters from their gradients (built over the engine's param groups)",
    "schedule": "the learning-rate multiplier at each optimiser step",
}
"""Every kind of component and what it does; a spec of another kind is refused."""

COMPONENT_KEYWORD = "x-framework-kind"
"""Marks a schema node as a nested component of the named kind (``{"type": ..., ...}``)."""


class RegistryError(Exception):
    """A plugin or component could not be loaded, registered or found."""


@dataclass(frozen=True)
class ComponentSpec:
    """One registered component: what a plugin's ``framework_components`` hook yields."""

    kind: str
    name: str
    factory: Callable[..., Any]
    schema: Mapping[str, Any]
    doc: str
    provider: str = field(default="", compare=False)

    @property
    def module(self) -> str:
        """The module that defines the factory: where to read the component's code."""
        return getattr(self.factory, "__module__", None) or "?"


@dataclass
class BuildContext:
    """What a factory may need beyond its own params: sizes fixed by other components
    (``vocab_size``, ``image_size``, widths) and a way to build nested components."""

    registry: "Registry"
    values: dict[str, Any] = field(default_factory=dict)
    path: str = "$"
    """JSON path of the component being built, named by build errors."""

    def __getitem__(self, key: str) -> Any:
        if key not in self.values:
            raise RegistryError(
                f"component needs '{key}' from the build context, which has only "
                f"{sorted(self.values)}; is a component it depends on missing from the recipe?"
            )
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def build(self, kind: str, config: Mapping[str, Any], *, at: Optional[str] = None, **extra: Any) -> Any:
        """Build a nested component at JSON path ``at`` (default: this one's);
        ``extra`` adds entries to the context for it."""
        child = BuildContext(self.registry, {**self.values, **extra}, at or self.path)
        return self.registry.build(kind, config, child)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ' (did you mean ...?)' suffix naming the closest choices, or ''."""
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def default_type(node: Mapping[str, Any]) -> Optional[str]:
    """The component type an entry of a nested-component node gets when it names none: the
    ``type`` of the node's ``default`` (``{"x-framework-kind": "schedule", "default":
    {"type": "cosine"}}`` lets ``"schedule": {"warmup_steps": 10}`` mean a cosine schedule)."""
    default = node.get("default")
    return default.get("type") if COMPONENT_KEYWORD in node and isinstance(default, dict) else None


def fill_defaults(schema: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``params`` with the schema's property defaults filled in, recursively (and the
    :func:`default_type` of a nested component that names no type)."""
    out = copy.deepcopy(dict(params))
    for key, sub in schema.get("properties", {}).items():
        if key not in out and "default" in sub:
            out[key] = copy.deepcopy(sub["default"])
        if isinstance(out.get(key), dict) and "type" not in out[key] and default_type(sub):
            out[key] = {"type": default_type(sub), **out[key]}
        if isinstance(out.get(key), dict) and sub.get("type") == "object" and COMPONENT_KEYWORD not in sub:
            out[key] = fill_defaults(sub, out[key])
    return out


@dataclass(frozen=True)
class LoadFailure:
    """A plugin, or one of its components, that could not be registered.

    ``components`` lists the ``(kind, name)`` pairs it would have provided, when known
    (a plugin that fails to import cannot say); a recipe using one of them gets ``reason``.
    """

    plugin: str
    distribution: str
    reason: str
    components: tuple[tuple[str, str], ...] = ()


class ComponentBuildError(RegistryError, ValueError):
    """A component's factory refused its params or the sizes of the components around it
    (a ``ValueError`` like the factory's own); ``path`` is the JSON path of its entry."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path, self.message = path, message


class PluginRefused(RegistryError):
    """A whole plugin was refused; ``components`` are those it advertised, if it could list them."""

    def __init__(self, message: str, components: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.components = components


def _advertised(plugin: ModuleType | object) -> tuple[tuple[str, str], ...]:
    """The (kind, name) pairs a refused plugin lists, or () when it cannot list them."""
    try:
        return tuple((str(s.kind), str(s.name)) for s in getattr(plugin, "framework_components")())
    except Exception:  # a refused plugin's own code may fail in any way; naming is best effort
        return ()


class Registry:
    """All components of all installed plugins, by kind and name, and what failed to load."""

    def __init__(self) -> None:
        self.plugin_manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.plugin_manager.add_hookspecs(hookspecs)
        self._specs: dict[str, dict[str, ComponentSpec]] = {kind: {} for kind in KINDS}
        self._unavailable: dict[tuple[str, str], str] = {}  # (kind, name) -> why a recipe cannot use it
        self._providers: dict[tuple[str, str], list[str]] = {}  # (kind, name) -> every provider seen
        self.failures: list[LoadFailure] = []
        self.distributions: dict[str, str] = {}  # plugin name -> "dist==version"

    # --- loading ----------------------------------------------------------------

    def load_entry_points(self, group: str = hookspecs.ENTRY_POINT_GROUP) -> "Registry":
        """Import and register every plugin of the entry-point group.

        A plugin that fails (import error, incompatible API version, misspelt hook) is
        recorded in ``failures`` with its distribution and left out; the other plugins
        load as usual. A recipe that uses a component it would have provided gets the
        failure as its error (see :meth:`get`).
        """
        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            dist = f"{ep.dist.name}=={ep.dist.version}" if ep.dist else "unknown distribution"
            try:
                plugin = ep.load()
            except Exception as exc:  # third-party code: any error stays with its plugin
                self._fail(LoadFailure(ep.name, dist, f"plugin '{ep.name}' from {dist} failed to import "
                                                      f"{ep.value}: {type(exc).__name__}: {exc}"))
                continue
            try:
                self.register_plugin(plugin, name=ep.name, distribution=dist)
            except PluginRefused as exc:
                self._fail(LoadFailure(ep.name, dist, str(exc), exc.components))
        return self

    def register_plugin(self, plugin: ModuleType | object, *, name: str, distribution: str) -> None:
        """Register one plugin object and collect its components.

        Raises :class:`PluginRefused` when the whole plugin is refused (API version,
        misspelt hook, components that cannot be listed); a single bad component (unknown
        kind, invalid schema, duplicate name) is recorded in ``failures`` and the
        plugin's other components are kept.
        """
        wanted = getattr(plugin, "FRAMEWORK_API_VERSION", hookspecs.API_VERSION)
        if wanted != hookspecs.API_VERSION:
            raise PluginRefused(
                f"plugin '{name}' from {distribution} was written for plugin API version "
                f"{wanted}, but this framework provides version {hookspecs.API_VERSION}; "
                f"install a release of {distribution.split('==')[0]} built for API {hookspecs.API_VERSION}",
                _advertised(plugin),
            )
        was_registered = self.plugin_manager.is_registered(plugin)
        try:
            self.plugin_manager.register(plugin, name=name)
            self.plugin_manager.check_pending()
            specs = list(getattr(plugin, "framework_components", lambda: [])())
        except Exception as exc:  # third-party code: any error refuses this plugin only
            if not was_registered and self.plugin_manager.is_registered(plugin):
                self.plugin_manager.unregister(plugin)
            raise PluginRefused(f"plugin '{name}' from {distribution} was refused: {exc}") from exc
        self.distributions[name] = distribution
        for spec in specs:
            try:
                self.add(ComponentSpec(spec.kind, spec.name, spec.factory, spec.schema, spec.doc, distribution))
            except RegistryError as exc:
                self.failures.append(LoadFailure(name, distribution, str(exc), ((spec.kind, spec.name),)))

    def add(self, spec: ComponentSpec) -> None:
        """Add one component, checking its kind, name and schema.

        A refused component raises; its name then stays unavailable (unless another
        provider registers it validly), and a name registered twice becomes unavailable
        for both providers, so a recipe never silently gets either.
        """
        where = f"{spec.kind} '{spec.name}' from {spec.provider or 'an unnamed provider'}"
        if spec.kind not in KINDS:
            raise RegistryError(f"{where}: unknown kind{did_you_mean(spec.kind, KINDS)}; kinds are {sorted(KINDS)}")
        key = (spec.kind, spec.name)
        try:
            jsonschema.Draft202012Validator.check_schema(spec.schema)
        except jsonschema.SchemaError as exc:
            raise self._unusable(key, f"{where}: its params schema is not valid JSON Schema: {exc.message}") from exc
        if spec.schema.get("type", "object") != "object" or "type" in spec.schema.get("properties", {}):
            raise self._unusable(key, f"{where}: a params schema must be an object schema without a 'type' property")
        providers = self._providers.setdefault(key, [])
        providers.append(spec.provider)
        if len(providers) > 1:
            self._specs[spec.kind].pop(spec.name, None)
            raise self._unusable(key, f"{spec.kind} '{spec.name}' is registered twice: by "
                                      f"{' and by '.join(providers)}; uninstall one of them or rename the component")
        self._specs[spec.kind][spec.name] = spec

    def _unusable(self, key: tuple[str, str], reason: str) -> RegistryError:
        self._unavailable[key] = reason
        return RegistryError(reason)

    def _fail(self, failure: LoadFailure) -> None:
        self.failures.append(failure)
        for key in failure.components:
            self._unavailable[key] = failure.reason

    # --- lookup and building ----------------------------------------------------------

    def names(self, kind: str) -> list[str]:
        """Names a recipe may use for ``kind``: registered ones and, so that using them
        raises their load failure from :meth:`get`, those of failed plugins."""
        broken = {name for k, name in self._unavailable if k == kind}
        return sorted(set(self._specs[kind]) | broken)

    def specs(self, kind: Optional[str] = None) -> list[ComponentSpec]:
        """Every usable component (of ``kind``), sorted by kind then name."""
        kinds = [kind] if kind else list(KINDS)
        return [self._specs[k][n] for k in kinds for n in sorted(self._specs[k])]

    def get(self, kind: str, name: str) -> ComponentSpec:
        if kind not in self._specs:
            raise RegistryError(f"unknown component kind '{kind}'{did_you_mean(kind, KINDS)}")
        spec = self._specs[kind].get(name)
        if spec is not None:
            return spec
        if (kind, name) in self._unavailable:
            raise RegistryError(f"{kind} '{name}' cannot be used: {self._unavailable[kind, name]}")
        raise RegistryError(self.missing_message(kind, name))

    def missing_message(self, kind: str, name: str) -> str:
        """Why no ``kind`` is named ``name``: close names, and plugins that failed to load
        without saying what they provide (the component may be theirs)."""
        known = self.names(kind)
        message = f"no {kind} named '{name}'{did_you_mean(name, known)}; registered: {', '.join(known) or 'none'}"
        unknown = [f for f in self.failures if not f.components]
        if unknown:
            message += "; these plugins failed to load and may provide it: " + "; ".join(f.reason for f in unknown)
        return message

    def build(self, kind: str, config: Mapping[str, Any], context: Optional[BuildContext] = None) -> Any:
        """Build the component ``config["type"]`` of ``kind`` from its (validated) params."""
        spec = self.get(kind, config["type"])
        params = fill_defaults(spec.schema, {k: v for k, v in config.items() if k != "type"})
        context = context or BuildContext(self)
        if "context" in inspect.signature(spec.factory).parameters:
            params["context"] = context
        try:
            return spec.factory(**params)
        except (TypeError, ValueError, OSError) as exc:  # refused params or sizes, a missing weights file
            raise ComponentBuildError(context.path, f"{kind} '{spec.name}' from {spec.provider} could not be built: "
                                                    f"{exc}") from exc

    def hook(self) -> Any:
        return self.plugin_manager.hook


_DEFAULT: Optional[Registry] = None


def default_registry() -> Registry:
    """The registry of every installed plugin, loaded once per process."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Registry().load_entry_points()
    return _DEFAULT
