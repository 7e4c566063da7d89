"""Typed flow parameters: pydantic models generated from the stage config dataclasses.

Prefect builds a deployment's parameter schema from the flow's type hints, so typing
`config` with these models gives the UI a form with every option, its default, its
help and its choices, instead of one JSON blob. The dataclasses stay the single
definition (of the CLI, config files and cache keys too); these mirror them field by
field. A run's options are what was set explicitly (`explicit`): an option left out
falls to the config file, then to the default, exactly as on the command line.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from wmf.config import RunConfig, sections


def options_model(cls: type, title: str) -> type[BaseModel]:
    """A pydantic model with the dataclass's fields, defaults, help and choices."""
    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {
        f.name: (hints[f.name], Field(f.default, description=f.metadata["help"]))
        for f in dataclasses.fields(cls)
    }
    config = ConfigDict(extra="forbid", title=title)
    return create_model(f"{cls.__name__.removesuffix('Config')}Options", __config__=config, **fields)


SECTIONS: dict[str, type[BaseModel]] = {
    name: options_model(cls, f"{name} options") for name, cls in sections().items()
}
PipelineOptions = create_model(
    "PipelineOptions",
    __config__=ConfigDict(extra="forbid", title="options by stage (unset ones: config_file, then defaults)"),
    **{name: (model, Field(default_factory=model)) for name, model in SECTIONS.items()},
)
RunOptions = options_model(RunConfig, "orchestration options")


def explicit(options: BaseModel | dict[str, Any] | None) -> dict[str, Any]:
    """The options a run set explicitly, by section ({} for none); a plain dict passes as it is."""
    if options is None:
        return {}
    if isinstance(options, dict):
        return options
    return options.model_dump(exclude_unset=True)
