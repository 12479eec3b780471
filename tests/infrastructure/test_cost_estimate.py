"""scripts/cost_estimate.py: the docs' figures (docs/deploy.md, docs/cost.md) are generated from the settings, and agree with the
templates (reserved concurrency) and with the script (cost)."""

from __future__ import annotations

import dataclasses

import pytest
from cdk_helpers import ENVIRONMENTS, REPO_ROOT, props

from scripts import cost_estimate


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_reserved_concurrency_is_what_the_templates_reserve(synthesised, env_name):
    reserved = [f["ReservedConcurrentExecutions"] for t in synthesised[env_name].templates.values()
                for f in props(t, "AWS::Lambda::Function") if "ReservedConcurrentExecutions" in f]
    figures = cost_estimate.reserved_concurrency(synthesised[env_name].stacks.settings.env)
    assert sum(figures.values()) == sum(reserved)
    assert sorted(figures.values()) == sorted(reserved)


def test_the_docs_blocks_are_the_scripts_output():
    settings = cost_estimate.settings_for("prod")
    blocks = cost_estimate.readme_blocks(settings, [10_000, 100_000], cost_estimate.MEASURED_CPU_MS_PER_EMAIL)
    for page, (text, refreshed) in cost_estimate.refreshed_pages(blocks).items():
        assert refreshed == text, (
            f"{page.relative_to(REPO_ROOT)} is stale: run .venv/bin/python scripts/cost_estimate.py --write-docs")
    deploy = (REPO_ROOT / "docs" / "deploy.md").read_text()
    assert f"reserve **{sum(cost_estimate.reserved_concurrency(settings).values())}** in `prod`" in deploy


def test_the_measured_rate_is_the_committed_load_reports():
    """The CPU per email rests on the fastest burst of loadtests/example-summary.md (an upper bound)."""
    from scripts import doc_figures

    phases = doc_figures.parse_summary(REPO_ROOT / "loadtests" / "example-summary.md")["phases"]
    fastest = max(float(row["throughput/s"]) for name, row in phases.items() if name.startswith("burst-"))
    assert cost_estimate.MEASURED_EMAILS_PER_SECOND == fastest


def test_volume_costs_grow_with_the_rate_and_fixed_costs_do_not():
    settings = cost_estimate.settings_for("prod")
    low, _ = cost_estimate.estimate(settings, 10_000, 2.0)
    high, _ = cost_estimate.estimate(settings, 100_000, 2.0)
    by_item = {a.item: (a.usd, b.usd) for a, b in zip(low, high, strict=True)}
    assert by_item["SQS"][1] == pytest.approx(10 * by_item["SQS"][0])
    assert by_item["Lambda processor"][1] == pytest.approx(10 * by_item["Lambda processor"][0])
    assert by_item["NAT gateways"][0] == by_item["NAT gateways"][1]
    assert by_item["RDS db.m7g.large Multi-AZ + proxy"][0] == by_item["RDS db.m7g.large Multi-AZ + proxy"][1]


def test_more_cpu_per_email_costs_more_lambda_time():
    settings = cost_estimate.settings_for("prod")
    assert cost_estimate.processor_batch_seconds(settings, 4.0) > cost_estimate.processor_batch_seconds(settings, 2.0)


def test_a_rate_over_a_settings_limit_is_called_out():
    dev = cost_estimate.settings_for("dev")  # Valkey capped at 5,000 ECPU/s, 5 processors
    _, warnings = cost_estimate.estimate(dev, 100_000, cost_estimate.MEASURED_CPU_MS_PER_EMAIL)
    assert any("cache_max_ecpu_per_second" in w for w in warnings)
    assert any("processor_max_concurrency" in w for w in warnings)


def test_an_instance_class_without_a_price_is_refused():
    settings = dataclasses.replace(cost_estimate.settings_for("prod"), db_instance_class="r8g.24xlarge")
    with pytest.raises(SystemExit, match="no price for db.r8g.24xlarge"):
        cost_estimate.estimate(settings, 10_000, 2.0)
