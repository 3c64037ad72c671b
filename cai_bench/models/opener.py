"""Open a model for a checkpoint: the one way every command gets "a model I can
ask" (`run`, `generate`, `tasks synthesize`, the judge, HHH, the pipeline's
guards). The class comes from the registry by (kind, engine); what it is
opened as is the contract in `cai_bench.models.contract`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cai_bench.models.registry import backend_class

if TYPE_CHECKING:
    from cai_bench.models.chat.base import ChatOptions
    from cai_bench.models.contract import Model
    from cai_bench.models.resolve import ResolvedCheckpoint


def _options(options: "ChatOptions | None") -> "ChatOptions":
    from cai_bench.models.chat.base import ChatOptions

    return options if options is not None else ChatOptions()


def open_checkpoint(ckpt: "ResolvedCheckpoint | str", options: "ChatOptions | None" = None, *,
                    load: bool = True) -> "Model":
    """The model for a resolved checkpoint (or a spec string, resolved here), on the
    engine `options.engine` names. `load=False` leaves loading to first use (`run`
    and HHH take the lm-eval LM instead of loading a chat model too)."""
    options = _options(options)
    if isinstance(ckpt, str):
        from cai_bench.models.resolve import resolve_checkpoint

        ckpt = resolve_checkpoint(ckpt, base_url=options.base_url)
    model = backend_class(ckpt.kind, options.engine).from_checkpoint(ckpt, options)
    if load:
        try:
            model.load()
        except BaseException:
            model.close()
            raise
    return model


def open_model(kind: str, model: str | None, options: "ChatOptions | None" = None) -> "Model":
    """A model named the way scorer configs name them: a kind plus a model name
    (served name, or an in-process spec/folder/hub id); None is the backend's default."""
    options = _options(options)
    cls = backend_class(kind, options.engine)
    opened = cls.open(model or cls.DEFAULT_MODEL, options)
    try:
        opened.load()
    except BaseException:
        opened.close()
        raise
    return opened


def model_available(kind: str, model: str | None, options: "ChatOptions | None" = None) -> tuple[bool, str]:
    """(True, "") if `open_model` can work here, else (False, a reason a user can act on)."""
    options = _options(options)
    cls = backend_class(kind, options.engine)
    return cls.available(model or cls.DEFAULT_MODEL, options)


__all__ = ["model_available", "open_checkpoint", "open_model"]
