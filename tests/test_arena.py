"""`corral arena`: a real Gradio server on localhost answered through gradio_client, votes appended as preference
rows that data_prep reads, a headless Chromium screenshot of the page with both answers, one-line errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from apps.arena import exposure_warning, preference_rows
from evals.screenshot import find_chromium
from tests.after_training import REPO, heldout_prompts, lora_run
from tests.eval_fixtures import ANSWER

MAX_NEW = 12
SCREENSHOT = Path(tempfile.gettempdir()) / "corral-arena-screenshot.png"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def arena_env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "GRADIO_ANALYTICS_ENABLED": "False",
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


@pytest.fixture(scope="module")
def arena(tiny_small, tmp_path_factory):
    """A running `corral arena RUN scripted` on a free localhost port that answers `prompt` on page load; `scripted`
    is a tiny chat model (its own tokenizer) whose greedy answer is always `ANSWER`."""
    from tests.eval_fixtures import make_tokenizer, scripted_llama

    run = lora_run(tiny_small, tmp_path_factory.getbasetemp() / "after-training")
    scripted = tmp_path_factory.mktemp("arena-models") / "scripted"
    scripted_llama(make_tokenizer(), ANSWER, scripted)
    prompt = heldout_prompts(tiny_small, 1)[0][-1]["content"]
    votes = tmp_path_factory.mktemp("arena") / "votes.jsonl"
    port = free_port()
    log = open(votes.with_name("server.log"), "w")
    proc = subprocess.Popen([sys.executable, "-m", "apps.cli", "arena", str(run), str(scripted),
                             "--port", str(port), "--votes", str(votes), "--prompt", prompt,
                             "--max-new-tokens", str(MAX_NEW)], cwd=REPO, env=arena_env(), stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 600
    while True:
        try:
            urllib.request.urlopen(url, timeout=5)
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                log.close()
                raise AssertionError(f"arena did not start: {votes.with_name('server.log').read_text()}")
            time.sleep(1)
    yield {"url": url, "port": port, "votes": votes, "prompt": prompt, "run": run, "log": votes.with_name("server.log")}
    proc.terminate()
    proc.wait(timeout=60)
    log.close()


def test_arena_answers_through_gradio_client_and_votes_become_preference_rows(arena):
    from gradio_client import Client

    from data_prep.formats import preference

    client = Client(arena["url"], verbose=False)
    a_run, a_other = client.predict(arena["prompt"], api_name="/answer")
    assert a_run.strip() and a_other == ANSWER
    assert client.predict(arena["prompt"], api_name="/answer") == (a_run, a_other)  # greedy: the same again

    status = client.predict(arena["prompt"], a_run, a_other, api_name="/vote_up_0")
    assert status == f"Recorded 1 preference pair in {arena['votes']}."
    client.predict(arena["prompt"], a_run, a_other, api_name="/vote_down_0")
    rows = [json.loads(line) for line in arena["votes"].read_text().splitlines()]
    assert [(r["chosen_model"], r["rejected_model"]) for r in rows] == [("sft-lora", "scripted"), ("scripted", "sft-lora")]
    assert rows[0]["prompt"] == [{"role": "user", "content": arena["prompt"]}]
    assert rows[0]["chosen"] == [{"role": "assistant", "content": a_run.strip()}] == rows[1]["rejected"]
    converted = preference.convert(rows[0])  # the standard schema data_prep reads for DPO and reward recipes
    assert converted["chosen"][-1]["content"] == a_run.strip()
    server_log = arena["log"].read_text()
    assert "warning" not in server_log.lower() and "Traceback" not in server_log


# The same rule as the compare report's screenshot test: .ci/run installs Chromium and sets CORRAL_REQUIRE_CHROMIUM.
@pytest.mark.skipif(find_chromium() is None and not os.environ.get("CORRAL_REQUIRE_CHROMIUM"),
                    reason="Chromium not installed (apt-get install chromium); .ci/run installs it and requires it")
def test_headless_chromium_shows_the_page_with_both_answers(arena):
    from gradio_client import Client
    from PIL import Image

    chromium = find_chromium()
    # Chromium's virtual time does not wait for the server to generate: answer the page's prompt first
    # (greedy answers are kept per prompt), so the page load shows them at once.
    a_run, a_other = Client(arena["url"], verbose=False).predict(arena["prompt"], api_name="/answer")
    with tempfile.TemporaryDirectory() as profile:
        flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--window-size=1280,800", "--virtual-time-budget=20000"]
        dom = subprocess.run([*flags, "--dump-dom", arena["url"]], capture_output=True, text=True, timeout=180).stdout
        subprocess.run([*flags, f"--screenshot={SCREENSHOT}", arena["url"]], capture_output=True, timeout=180,
                       check=True)
    assert "corral arena" in dom and "sft-lora" in dom and "scripted" in dom
    assert " ".join(a_run.split()) in " ".join(dom.split()) and ANSWER in dom
    with Image.open(SCREENSHOT) as im:
        assert im.size == (1280, 800)
        colors = im.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colors is not None and len(colors) > 50  # rendered text and widgets, not a blank page


def test_arena_on_a_port_in_use_is_one_line(tmp_path, capsys):
    from apps.arena import main as arena_main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert arena_main([str(tmp_path), "--port", str(port)]) == 2  # checked before the (missing) model loads
    err = capsys.readouterr().err
    assert err.startswith(f"error: port {port} on 127.0.0.1 is not free (") and err.count("\n") == 1
    assert err.endswith("; pick another with --port\n")


def test_listening_beyond_this_machine_warns():
    assert exposure_warning("127.0.0.1", 7860, "v.jsonl") is None
    assert exposure_warning("0.0.0.0", 7860, "v.jsonl") == (
        "warning: listening on 0.0.0.0:7860: anyone who can reach this port can use these models and append to v.jsonl")


def test_a_vote_pairs_the_answer_with_every_other_and_skips_identical_ones():
    prompt = [{"role": "user", "content": "Capital of Loland?"}]
    rows = preference_rows(prompt, {"a": "Lo.", "b": "Bo.", "c": "Lo."}, "a", up=False)
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"], r["chosen_model"]) for r in rows] == [
        ("Bo.", "Lo.", "b")]
