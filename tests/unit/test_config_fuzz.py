"""Configuration from arbitrary environments: a valid config or a ``ConfigError``, never a crash,
and a secret never shows in the error."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from services.config import ProcessorConfig, SenderConfig, load_config
from services.errors import ConfigError


def _env_names(config: type[msgspec.Struct], names: set[str]) -> set[str]:
    info = msgspec.inspect.type_info(config)
    assert isinstance(info, msgspec.inspect.StructType)
    for field in info.fields:
        kind = field.type
        if isinstance(kind, msgspec.inspect.StructType):
            _env_names(kind.cls, names)
            continue
        for extra in (
            getattr(kind, "extra", None),
            *(getattr(m, "extra", None) for m in getattr(kind, "metadata", ())),
        ):
            if extra and "env" in extra:
                names.add(extra["env"])
    return names


NAMES = sorted(_env_names(ProcessorConfig, set()) | _env_names(SenderConfig, set()))
SECRET = "s3cr3t-token-value"


def test_every_setting_has_an_environment_variable() -> None:
    assert "SENDER_AUTH_TOKEN" in NAMES
    assert "PROCESSOR_FACTS_TOPIC" in NAMES
    assert "KAFKA_SASL_PASSWORD" in NAMES


@settings(max_examples=300, deadline=None)  # a deadline fails on a busy 2-core machine, not on a bug
@given(st.dictionaries(st.sampled_from(NAMES), st.text(max_size=40), max_size=8))
def test_any_environment_gives_a_config_or_a_config_error(env: dict[str, str]) -> None:
    for config in (ProcessorConfig, SenderConfig):
        try:
            load_config(config, env=env | {"SENDER_AUTH_TOKEN": SECRET, "KAFKA_SASL_PASSWORD": SECRET})
        except ConfigError as error:
            assert SECRET not in str(error)
