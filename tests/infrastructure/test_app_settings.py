"""Context handling and the dependencies layer's packaging."""

from __future__ import annotations

import pytest
from aws_cdk import App
from cdk_helpers import cdk_context

from stacks.constructs.lambda_function import _RETENTIONS, log_retention
from stacks.settings import load_settings


def test_default_environment_is_dev_with_bundling_on():
    settings = load_settings(App(context=cdk_context()).node)
    assert settings.env.name == "dev"
    assert settings.bundle_dependencies is True
    assert (settings.env.account, settings.env.region) == ("111111111111", "eu-west-1")


def test_command_line_strings_select_prod_and_switch_bundling_off():
    settings = load_settings(App(context=cdk_context(env="prod", bundle_dependencies="false")).node)
    assert settings.env.name == "prod" and settings.env.db_multi_az is True
    assert settings.bundle_dependencies is False


def test_unknown_environment_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown environment 'staging'.*\['dev', 'prod'\]"):
        load_settings(App(context=cdk_context(env="staging")).node)


def test_unbundled_layer_holds_only_a_do_not_deploy_marker(prod):
    layer_dirs = [p for p in prod.outdir.glob("asset.*") if (p / "python").is_dir()]
    (layer,) = layer_dirs
    assert [p.name for p in (layer / "python").iterdir()] == ["DEPENDENCIES_NOT_BUNDLED.txt"]


@pytest.mark.parametrize(("days", "expected"), [(14, 14), (90, 90), (20, 30), (400, 731)])
def test_log_retention_rounds_up_to_a_period_cloudwatch_accepts(days, expected):
    assert {v: k for k, v in _RETENTIONS.items()}[log_retention(days)] == expected
