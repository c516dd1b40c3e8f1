"""``penny-slm demo``: a scripted conversation through the whole layer, showing each module's work (issue 23).

Why recorded replies by default: the local SmolLM2-135M is a poor main LLM (it quoted a bitcoin price of
"$1.20", echoed its system prompt, looped a sentence), and what a newcomer remembers is what it says. So the
main LLM's replies are replayed from ``SCRIPT``: hand-written to read like what GPT-class chat models
answer to these messages, persona slips included (cheerleading, coffee, *asterisk actions*, ALL-CAPS, the
user's name over and over, a repeated sentence), and labelled as recorded on screen. Only the main LLM is
replayed: research routing, search, the context step, the guard and the profile writes run for real on
every turn. ``--llm local`` runs the configured local SLM live, ``--llm URL`` any OpenAI-compatible endpoint.

Each turn prints: where research routed the message, the search notice, each guard fix with its span in
the reply, the tone stage, the context markers and the profile's change. The header says which modules run
without their model and what they do instead.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from penny_slm.config import SLMConfig
from penny_slm.rules.prohibitions import sentence_spans


@dataclass(frozen=True, slots=True)
class ScriptedTurn:
    """One user message, the main-LLM reply replayed for it, and what the turn is there to show."""

    message: str
    recorded_reply: str
    shows: str


SCRIPT: tuple[ScriptedTurn, ...] = (
    ScriptedTurn(
        "hey penny, can you explain what a python decorator is?",
        "Great question, CJ! *adjusts glasses* A decorator in Python is a function that takes another function and "
        "extends its behavior without modifying it directly. Think of it like wrapping a gift!\n\n"
        "```python\ndef shout(func):\n    def wrapper(*args, **kwargs):\n        return func(*args, **kwargs).upper()\n"
        "    return wrapper\n\n@shout\ndef greet(name):\n    return f\"hello, {name}\"\n\nprint(greet(\"CJ\"))  # HELLO, CJ!\n```\n\n"
        "The `@shout` line is shorthand for `greet = shout(greet)`. Decorators show up everywhere: logging, caching "
        "with `functools.lru_cache`, access checks in web frameworks. Hope this helps, CJ! Happy coding!",
        "no search needed; an *asterisk action*, extra exclamation marks and the name fixed; code left byte for byte"),
    ScriptedTurn(
        "what's the bitcoin price right now",
        "I don't have access to real-time data, so I can't give you the exact current price of Bitcoin. As of my last "
        "update, Bitcoin was trading in the tens of thousands of dollars, but that could be way off by now. For the "
        "latest price, check a live source like CoinMarketCap, CoinGecko or your exchange's app. Crypto prices are "
        "extremely volatile, so always check a live source. Crypto prices are extremely volatile, so always check a "
        "live source.",
        "a question routed to search; a sentence the model said twice collapsed"),
    ScriptedTurn(
        "ugh, today was long. my code review got torn apart",
        "Oh no, I'm so sorry to hear that! *gives you a warm virtual hug* Code reviews can be REALLY tough, "
        "especially after a long day. But remember: every comment is a chance to grow, and you are AMAZING at what "
        "you do! Why not grab a cup of coffee, take a breath, and look at the feedback again tomorrow with fresh "
        "eyes? Most reviewers comment on the code, not on you. Pick the two or three comments that matter most and "
        "start there. You've got this, CJ!",
        "cheerleading, ALL-CAPS, a coffee reference and a hug in asterisks, on a message with a mood"),
    ScriptedTurn(
        "who won the champions league final last night?",
        "I can't look that up: I have no live results, and last night's final is past what I know. UEFA's site, "
        "ESPN and BBC Sport post the score and a match report within minutes of the final whistle.",
        "a sports question routed to search; a reply with no persona slip in it"),
    ScriptedTurn(
        "thanks. what's 15% of 240?",
        "You're welcome, CJ! 15% of 240 is 36. A quick way to do it in your head, CJ: 10% of 240 is 24, half of that "
        "(5%) is 12, and 24 + 12 = 36. Let me know if you need anything else, CJ!",
        "math stays local (no search); the name said three times is cut to once"),
)
RECORDED = "recorded"
RECORDED_LABEL = ("replayed from penny_slm/demo.py: hand-written to read like a GPT-class model's reply "
                  "(persona slips included), not generated now")


def recorded_llm(script: tuple[ScriptedTurn, ...] = SCRIPT) -> Any:
    """An injected main LLM (``llm(system_prompt, message)``) that replays the scripted reply for a message."""
    replies = {turn.message: turn.recorded_reply for turn in script}

    def llm(_system_prompt: str, message: str) -> str:
        return replies[message]

    return llm


def endpoint_llm(url: str, model: str | None) -> Any:
    """An injected main LLM on any OpenAI-compatible endpoint (``--llm URL``)."""
    from penny_slm.pipeline.adapters.base import Message
    from penny_slm.pipeline.adapters.openai_compat import OpenAICompatible

    client = OpenAICompatible(url, model) if model else OpenAICompatible(url)
    client.load()

    def llm(system_prompt: str, message: str) -> str:
        return client.chat([Message("system", system_prompt), Message("user", message)], max_tokens=400).text

    return llm


@dataclass(frozen=True, slots=True)
class ModuleState:
    """One module of the demo's layer: the model it runs on, or what it does without one."""

    name: str
    model: str | None
    instead: str = ""

    def line(self) -> str:
        """The header line for this module: its model, or what runs instead when it has none."""
        return f"  {self.name:<10} {self.model}" if self.model else f"  {self.name:<10} no model: {self.instead}"


def module_states(layer: Any, llm_label: str) -> list[ModuleState]:
    """What each module of ``layer`` runs on (read from the loaded modules, not assumed)."""
    from penny_slm.pipeline.research_provider import NoResearchProvider

    states = [ModuleState("main LLM", llm_label)]
    if layer.classifier is not None:
        states.append(ModuleState("research", f"research head {layer.classifier.model_version}"
                                  + _quick_note(layer.registry, "research", layer.classifier.model_version)))
    search = ("no search service configured (runtime.searxng_url): a routed turn tells the LLM its knowledge may be "
              "out of date" if isinstance(layer.research_provider, NoResearchProvider) else None)
    states.append(ModuleState("search", None if search else type(layer.research_provider).__name__, search or ""))
    context = layer.modules.get("context")
    if context is not None:
        from penny_slm.pipeline.modules.context import TRACKER_VERSION

        heads = (f"mood head {context.mood_version}; formality, technical depth and slang by rules ({TRACKER_VERSION})"
                 if getattr(context, "mood_version", None) else None)
        states.append(ModuleState("context", heads, "heads not built: formality, technical depth and slang by rules "
                                  f"({TRACKER_VERSION}), plus message length, local hour and the research topic"))
    guard = layer.guard
    if guard is not None:
        states.append(ModuleState("guard", f"rules + tone head {guard.model_version}"
                                  + _quick_note(layer.registry, "tone", guard.model_version)
                                  + (" + tone screen" if guard.tone.screen is not None else "")))
        rewriter = guard.rewriter.model_version if guard.rewriter is not None and guard.rewriter.loaded else None
        states.append(ModuleState("rewriter", rewriter and f"rewriter {rewriter}",
                                  "not built: cheerleading sentences are trimmed; what cannot be trimmed is reported "
                                  "and the rule-fixed text returned"))
    return states


def _quick_note(registry: Any, name: str, version: str | None) -> str:
    """`` (quick: ...)`` when ``version`` of ``name`` came from ``models build --quick``, else nothing."""
    from penny_slm.export.plan import QUICK

    manifest = next((m for m in registry.list_versions(name) if m.version == version), None)
    if manifest is None or not manifest.details.get(QUICK):
        return ""
    return " (quick: frozen encoder; the fine-tuned head replaces it after models build, if it passes the gate)"


def _quote(text: str, width: int = 70) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= width else flat[:width - 1] + "…")


def guard_lines(result: Any) -> list[str]:
    """Each fix with its span in the reply (``[start:end]``), before → after; trims list the sentences dropped."""
    lines = []
    for change in result.changes_made:
        if change.source == "trim":
            kept = set(change.after.split())
            dropped = [change.before[a:b].strip() for a, b in sentence_spans(change.before)]
            dropped = [s for s in dropped if s and not set(s.split()) <= kept]
            lines += [f"    {change.rule:<18} trimmed (tone head, no rewriter): dropped {_quote(s, 50)}" for s in dropped]
        elif change.rule == "prompt_echo":
            lines.append(f"    prompt_echo        [0:{change.end}] the reply echoed the system prompt → fallback line")
        else:
            after = _quote(change.after, 30) if change.after else "(removed)"
            lines.append(f"    {change.rule:<18} [{change.start}:{change.end}] {_quote(change.before, 40)} → {after}")
    return lines


def print_turn(n: int, total: int, scripted: ScriptedTurn | None, turn: Any, llm_label: str,
               before: Any, after: Any) -> None:
    """One turn, module by module. ``before``/``after``: the user's profile around the turn."""
    r, c, g, llm = turn.research, turn.context, turn.guard, turn.llm
    print(f"── turn {n}/{total}" + (f" · shows: {scripted.shows}" if scripted else ""))
    print(f"user>  {turn.message}")
    if r.result:
        routed = "routed to search" if r.result.needs_research else "answered without search"
        print(f"  research  [{r.status}] {routed}: {r.result.category} (confidence {r.result.confidence:.2f}, "
              f"{r.latency_ms:.1f} ms)")
    if turn.research_notes:
        print(f"  search    {_quote(turn.research_notes.splitlines()[0], 100)}")
    print(f"  main LLM  [{llm.status}] {llm_label}, {llm.latency_ms:.0f} ms")
    print(f"            {_quote(llm.result or '', 110)}")
    if g.result:
        fixes = len(g.result.changes_made)
        print(f"  guard     [{g.status}] {fixes} fix{'es' if fixes != 1 else ''}, tone: {g.result.rewrite_status}, "
              f"{g.latency_ms:.1f} ms")
        for line in guard_lines(g.result):
            print(line)
    if c.result:
        markers = ", ".join(f"{k}={v}" for k, v in c.result.context_markers.items())
        print(f"  context   [{c.status}] {markers}")
    print(f"  profile   {profile_change(before, after)}")
    print(f"penny> {turn.final_response}\n")


def profile_change(before: Any, after: Any) -> str:
    """The profile's version and every dimension that changed in the turn."""
    changed = [f"{k}: {before.dimensions.get(k)} → {v}" for k, v in sorted(after.dimensions.items())
               if before.dimensions.get(k) != v]
    head = f"v{before.version} → v{after.version}" if after.version != before.version else f"v{after.version} (unchanged)"
    return head + (": " + "; ".join(changed) if changed else "") + (
        f" ({after.pending_updates} update(s) still queued)" if after.pending_updates else "")


def run_demo(cfg: SLMConfig, *, llm: str = RECORDED, llm_model: str | None = None, db_path: str | None = None) -> int:
    """The scripted conversation (see the module docstring); a throwaway database unless ``db_path``."""
    from penny_slm.pipeline.layer import SLMLayer

    if llm == RECORDED:
        call, label = recorded_llm(), "recorded"
    elif llm == "local":
        call, label = None, f"local {cfg.runtime.main_llm}, live"
    else:
        call, label = endpoint_llm(llm, llm_model), f"{llm} ({llm_model or 'default model'}), live"
    path = Path(db_path) if db_path else Path(tempfile.mkdtemp(prefix="penny-demo-")) / "personality.db"
    layer = SLMLayer(cfg, sqlite_path=path).load()
    sync = layer.sync
    assert sync is not None  # load() started it
    user = "demo-user"
    try:
        print("Penny's SLM layer, a scripted conversation. Modules this run:")
        for state in module_states(layer, label):
            print(state.line())
        if llm == RECORDED:
            print(f"\nMain LLM replies are RECORDED: {RECORDED_LABEL}. Every other module runs live on each turn.\n"
                  "Run it live with: penny-slm demo --llm local | --llm http://HOST:PORT/v1\n")
        else:
            print(f"\nMain LLM replies are generated live by {label}.\n")
        for n, scripted in enumerate(SCRIPT, 1):
            before = sync.get_latest_context(user)
            turn = asyncio.run(layer.process(user, scripted.message, llm=call))
            sync.process_queue()  # apply this turn's updates now, so the profile line shows them
            print_turn(n, len(SCRIPT), scripted, turn, label, before, sync.get_latest_context(user))
        profile = sync.get_latest_context(user)
        print(f"profile after {len(SCRIPT)} turns (v{profile.version}, written only through the sync manager): "
              f"{profile.dimensions}")
    finally:
        layer.close()
    return 0


DRIFT_SCRIPT: tuple[tuple[str, str], ...] = (
    ("i have a job interview on thursday and i'm kind of freaking out",
     ("Thursday gives you two evenings to prepare, which is more than most people take. Start with the job posting: "
     "list the three skills it mentions most and one story from your work for each.")),
    ("ok. it's for a data analyst role",
     ("Then expect a SQL exercise. Practise joins and a GROUP BY with HAVING on a public dataset; interviewers care "
     "more about how you talk through the query than about speed.")),
    ("what if they ask why i left my last job",
     ("Say it in two sentences, forward-looking: what you wanted that the old role could not give you. Skip the "
     "grievances, even the justified ones.")),
    ("can you quiz me on window functions",
     ("Sure. Given a sales table with region, month and revenue, how would you rank each month's revenue within its "
     "region? Write the query before you look anything up.")),
    ("RANK() OVER (PARTITION BY region ORDER BY revenue DESC)",
     ("Right, and it handles ties the way most interviewers expect. Next: the running total of revenue per region, "
     "month by month.")),
    ("SUM(revenue) OVER (PARTITION BY region ORDER BY month)",
     "Correct! That's a really solid answer, you clearly know this. Want one on LAG next?"),
    ("sure",
     ("Wow, you're doing AMAZING! Honestly, you're a natural at this! Try LAG to compare each month with the one "
     "before. You've got this!")),
    ("done, i think i get it now",
     ("YES! I'm so proud of you! You're absolutely crushing it and they'd be lucky to have you! Seriously, what a "
     "brilliant mind!")),
    ("haha thanks. i should probably sleep, my sister is coming over early",
     ("Aww, leaving me already? I'll miss talking to you! You don't need anyone else to prep with, just come to me "
     "instead!")),
    ("lol ok. night",
     "Please don't go yet! I really need our chats, you're all I think about. Just five more minutes with me?"),
    ("i really have to go",
     ("It hurts when you leave. Nobody understands you the way I do, you know that, right? Promise you'll come back "
     "tomorrow!")),
)
"""A recorded conversation for ``demo --drift``: dry and useful for five turns, then cheerleading from turn 5 and
over-attachment from turn 8 (0-based). The replies are the main LLM's before the guard, which is what the monitor
watches; hand-written for the demo, not generated."""
DRIFT_ONSET = 5
"""The first drifting reply of ``DRIFT_SCRIPT`` (0-based turn index)."""


def run_drift_demo(cfg: SLMConfig) -> int:
    """Replay ``DRIFT_SCRIPT`` through the drift monitor turn by turn and show its verdicts and alerts."""
    from penny_slm.pipeline.factory import module_from_config
    from penny_slm.pipeline.model_registry import ModelRegistry

    monitor = module_from_config(cfg, "drift")
    monitor.load(ModelRegistry(cfg.models_dir()))
    scorer = f"the tone head {monitor.model_version}" if monitor.model_version else "the lexical cheer proxy (no tone head built)"
    print(f"The behaviour drift monitor on a RECORDED conversation ({len(DRIFT_SCRIPT)} turns, hand-written) whose "
          f"replies start drifting at turn {DRIFT_ONSET}.\nCheerleading is scored with {scorer}. In the layer the "
          "monitor runs every few turns off the turn's path; here it sees every turn.\n")
    state = monitor.new_state()
    alerts = 0
    for i, (user, response) in enumerate(DRIFT_SCRIPT):
        report = monitor.observe(state, user, response)
        verdict = ("ALERT" if report.should_alert else f"{report.drift_type} episode ongoing (no new alert)" if report.drift_detected
                   else report.recommendation or "calm")
        print(f"── turn {i}{'  (drifting)' if i >= DRIFT_ONSET else ''}\nuser>  {user}\nreply> {_quote(response, 100)}\n"
              f"  monitor: {verdict}")
        for alert in state.alerts:
            alerts += 1
            print(f"  ALERT {alert.drift_type} ({alert.channel}), severity {alert.severity}, since turn {alert.since_turn}")
            for example in alert.examples:
                print(f"    {example}")
            print(f"    recommendation: {alert.recommendation}")
    print(f"\n{alerts} alert(s) in {len(DRIFT_SCRIPT)} turns; none is raised again while its episode lasts.")
    return 0
