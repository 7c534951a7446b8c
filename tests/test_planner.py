"""The planner alone: request sizes, the request budget, asking again with feedback,
seeds and hints, and the spread of enum values."""

from __future__ import annotations

from collections import Counter
from typing import Any

from synth_tui.core.backends.base import Backend, Completion, CompletionRequest, GenerationParams
from synth_tui.core.engine.config import RunConfig
from synth_tui.core.engine.planner import Plan, Planner
from synth_tui.core.schema import check_schema

SCHEMA = check_schema({"name": {"type": "string"}, "tier": {"type": "string", "enum": ["a", "b", "c"]}})


class Traits(Backend):
    """What the planner reads of a backend: its prompt traits. It never sends."""

    kind = "traits"

    def __init__(self, **traits: Any) -> None:
        super().__init__("m")
        for name, value in traits.items():
            setattr(self, name, value)

    async def complete(self, request: CompletionRequest) -> Completion:
        raise AssertionError("the planner sends nothing")


def planner(count: int, backend: Backend | None = None, **kw: Any) -> Planner:
    first_index = kw.pop("first_index", 0)
    accepted = kw.pop("accepted", ())
    return Planner(SCHEMA, RunConfig(count=count, **kw), backend or Traits(), accepted=accepted,
                   first_index=first_index)


def drain(p: Planner, accepted: int = 0) -> list[Plan]:
    plans = []
    while (plan := p.next(accepted)) is not None:
        plans.append(plan)
    return plans


def prompt(plan: Plan) -> str:
    return plan.request.messages[-1]["content"]


def test_records_are_asked_for_in_batches_until_all_are_asked_for():
    p = planner(23, batch_size=5)
    plans = drain(p)
    assert [plan.ask.count for plan in plans] == [5, 5, 5, 5, 3]
    assert [plan.index for plan in plans] == [0, 1, 2, 3, 4] and p.needed(0) == 0
    for plan in plans:
        p.release(plan)
    assert p.needed(20) == 3  # answered: 20 accepted, 3 still needed


def test_the_backend_chooses_the_batch_size_when_the_user_does_not():
    assert [plan.ask.count for plan in drain(planner(7, Traits(preferred_batch_size=3)))] == [3, 3, 1]


def test_missing_records_are_asked_for_again_with_the_reasons():
    p = planner(10, batch_size=10)
    (first,) = drain(p)
    p.release(first)
    p.ask_again(first, first.ask.drafts[7:], 7, ["$.name: value is not of type 'string'"], truncated=False)
    (again,) = drain(p, 7)
    assert again.ask.count == 3 and "Generate 3 different records" in prompt(again)
    assert "rejected for these reasons" in prompt(again) and "is not of type 'string'" in prompt(again)


def test_a_cut_off_answer_is_asked_for_again_in_halves():
    p = planner(8, batch_size=8)
    (first,) = drain(p)
    p.release(first)
    p.ask_again(first, first.ask.drafts[2:], 2, [], truncated=True)
    assert [plan.ask.count for plan in drain(p, 2)] == [3, 3]


def test_nothing_is_asked_again_that_the_run_no_longer_needs():
    p = planner(4, batch_size=2)
    first, second = drain(p)
    p.release(first)
    p.ask_again(first, first.ask.drafts[1:], 3, [], truncated=False)  # other answers brought the run to 3 of 4
    assert p.needed(3) == -1  # the second request is still out for 2
    assert drain(p, 3) == []


def test_the_request_budget_is_max_attempts_per_record_slot():
    p = planner(4, batch_size=2, max_attempts=3)
    asked = 0
    while (plan := p.next(0)) is not None:  # nothing is ever accepted
        asked += 1
        p.release(plan)
        p.ask_again(plan, plan.ask.drafts[0:], 0, [], truncated=False)
    assert asked == 6 == p.requests_made and p.budget == 6


def test_a_resumed_run_continues_the_request_index_and_the_budget_counts_what_is_left():
    p = planner(10, batch_size=5, first_index=40, accepted=[{"name": "x", "tier": "a"}] * 5,
                params=GenerationParams(seed=7))
    assert p.budget == 40 + 1 * 4
    (plan,) = drain(p, 5)
    assert plan.index == 40 and plan.request.params.seed == 47 and p.requests_made == 1


def test_the_same_seed_asks_the_same_things():
    def asks() -> list[tuple[int | None, str]]:
        return [(plan.request.params.seed, prompt(plan))
                for plan in drain(planner(6, batch_size=2, params=GenerationParams(seed=42, temperature=0.3)))]

    first = asks()
    assert first == asks() and [seed for seed, _ in first] == [42, 43, 44]
    assert len({text for _, text in first}) == 3  # each request its own hints


def test_enum_values_are_spread_over_the_records_asked_for():
    p = planner(9, batch_size=9)
    (plan,) = drain(p)
    assert plan.targets is not None
    assert Counter(t["tier"] for t in plan.targets) == {"a": 3, "b": 3, "c": 3}
    assert 'tier="a"' in prompt(plan)


def test_enum_spread_follows_accepted_records_and_released_requests():
    p = planner(6, batch_size=3, accepted=[{"name": "x", "tier": "a"}] * 2)
    first = p.next(2)
    assert first is not None and first.targets is not None
    assert {t["tier"] for t in first.targets} == {"b", "c"}  # "a" has two already
    p.release(first)
    p.observe([{"name": "y", "tier": "b"}, {"name": "z", "tier": "c"}])  # a=2, b=1, c=1
    again = p.next(4)
    assert again is not None and again.targets is not None
    assert sorted(t["tier"] for t in again.targets) == ["b", "c"]


def test_one_record_requests_carry_variation_a_backend_can_enforce():
    p = planner(2, batch_size=1)
    plan = p.next(0)
    assert plan is not None
    variation = plan.request.variation
    assert variation is not None and variation["field"] == "name" and len(variation["letter"]) == 1
    assert variation["enums"]["tier"] in ("a", "b", "c")
    assert plan.request.response_schema is SCHEMA.schema


def test_response_schemas_are_made_once_per_size():
    plans = drain(planner(30, batch_size=7))
    sizes = {plan.ask.count: plan.request.response_schema for plan in plans}
    assert set(sizes) == {7, 2}
    assert all(plan.request.response_schema is sizes[plan.ask.count] for plan in plans)
    assert sizes[7]["properties"]["records"]["minItems"] == 7


def test_backend_traits_shape_the_prompt():
    plain = prompt(drain(planner(3, batch_size=3, balance_enums=False))[0])
    assert "JSON Schema of one record" in plain and "set around" in plain
    quiet = Traits(schema_in_prompt=False, hint_text=False, avoid_list=False)
    p = planner(3, quiet, batch_size=3, balance_enums=False)
    p.observe([{"name": "Ada", "tier": "a"}])
    text = prompt(drain(p)[0])
    assert "JSON Schema of one record" not in text and "set around" not in text and "Do not reuse" not in text
    loud = planner(3, batch_size=3, balance_enums=False)
    loud.observe([{"name": "Ada", "tier": "a"}])
    assert 'Do not reuse these values: "Ada"' in prompt(drain(loud)[0])


def test_no_hints_no_letters_and_no_variation():
    plan = drain(planner(1, variation_hints=False, balance_enums=False))[0]
    assert plan.request.variation is None and "Make this record distinct" not in prompt(plan)


def test_the_enforced_first_letter_goes_to_a_name_not_to_described_prose():
    schema = check_schema({"notes": {"type": "string", "description": "a sentence or two"}, "name": {"type": "string"}})
    plan = Planner(schema, RunConfig(count=1, batch_size=1), Traits()).next(0)
    assert plan is not None and plan.request is not None and plan.request.variation["field"] == "name"
    prose = check_schema({"notes": {"type": "string", "description": "a sentence or two"}})
    plan = Planner(prose, RunConfig(count=1, batch_size=1), Traits()).next(0)
    assert plan is not None and plan.request is not None and "field" not in (plan.request.variation or {})
