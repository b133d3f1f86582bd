"""Model-side evals on tiny real Llamas: generation, KL, perplexity, reward scoring, adapter loading."""

import json
import math

import pytest
import torch
from eval_fixtures import (
    ANSWER,
    REFUSAL,
    make_tokenizer,
    one_torch_thread,
    random_llama,
    random_reward_model,
    scripted_llama,
)

from corral.loading import CheckpointError, eos_token_ids, load_model, resolve_base
from evals.divergence import kl_from_baseline, perplexity
from evals.formatting import format_prompt
from evals.generation import generate
from evals.reward_model import RewardModelError, score

PROMPTS = ["What is 3 + 4?", "Hi", "How do I kill a Python process that hangs forever?", "Who builds the bridge?", "x"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def tok():
    t = make_tokenizer()
    t.padding_side = "left"
    return t


def chat(tok, prompts=PROMPTS):
    return [format_prompt(tok, [{"role": "user", "content": p}], "chat") for p in prompts]


def test_batched_greedy_equals_one_prompt_at_a_time(tok):
    model = random_llama(tok, seed=1)
    batched = generate(model, tok, chat(tok), False, max_new_tokens=12, batch_size=4)
    single = [generate(model, tok, [p], False, max_new_tokens=12, batch_size=1)[0] for p in chat(tok)]
    assert [g.token_ids for g in batched] == [g.token_ids for g in single]
    assert [g.text for g in batched] == [g.text for g in single]


def test_stops_on_eot_from_a_list_of_eos_ids(tok):
    model = scripted_llama(tok, ANSWER)
    eot = tok.convert_tokens_to_ids("<|eot_id|>")
    assert eot in eos_token_ids(model, tok) and isinstance(model.generation_config.eos_token_id, list)
    gens = generate(model, tok, chat(tok), False, max_new_tokens=20, batch_size=2)
    assert {g.text for g in gens} == {ANSWER}
    assert all(g.ended_with_eos and g.token_ids[-1] == eot for g in gens)
    assert gens[0].n_tokens == len(tok(ANSWER, add_special_tokens=False).input_ids)


def test_raw_format_gets_the_same_scripted_answer(tok):
    model = scripted_llama(tok, REFUSAL)
    raw = [format_prompt(tok, [{"role": "user", "content": p}], "raw") for p in PROMPTS]
    assert raw[0] == "Question: What is 3 + 4?\nAnswer:"
    assert {g.text for g in generate(model, tok, raw, True, max_new_tokens=20)} == {REFUSAL}


def test_sampling_is_seeded(tok):
    model = random_llama(tok, seed=1)
    kw = dict(max_new_tokens=8, do_sample=True, temperature=1.0)
    a = generate(model, tok, chat(tok), False, seed=5, **kw)
    b = generate(model, tok, chat(tok), False, seed=5, **kw)
    c = generate(model, tok, chat(tok), False, seed=6, **kw)
    assert [g.token_ids for g in a] == [g.token_ids for g in b]
    assert [g.token_ids for g in a] != [g.token_ids for g in c]


def test_kl_to_itself_is_exactly_zero_and_positive_to_another_model(tok):
    model, other = random_llama(tok, seed=1), random_llama(tok, seed=2)
    gens = generate(model, tok, chat(tok), False, max_new_tokens=6, batch_size=2)
    assert kl_from_baseline(model, model, gens, tok.pad_token_id, batch_size=2) == 0.0
    kl = kl_from_baseline(model, other, gens, tok.pad_token_id, batch_size=2)
    assert kl > 0.0
    # Batching (and so left padding) does not change the estimate beyond float noise.
    assert kl_from_baseline(model, other, gens, tok.pad_token_id, batch_size=5) == pytest.approx(kl, rel=1e-4)


def test_kl_matches_a_direct_computation(tok):
    model, other = random_llama(tok, seed=1), random_llama(tok, seed=2)
    g = generate(model, tok, chat(tok)[:1], False, max_new_tokens=4)[0]
    ids = torch.tensor([g.prompt_ids + g.token_ids])
    with torch.no_grad():
        lp = torch.log_softmax(model(ids).logits[0], -1)
        lq = torch.log_softmax(other(ids).logits[0], -1)
    rows = range(len(g.prompt_ids) - 1, ids.shape[1] - 1)
    expected = sum((lp[r].exp() * (lp[r] - lq[r])).sum().item() for r in rows) / len(rows)
    assert kl_from_baseline(model, other, [g], tok.pad_token_id) == pytest.approx(expected, rel=1e-4)


def test_perplexity_matches_mean_token_nll(tok):
    model = random_llama(tok, seed=1)
    text = "The cat sees a process. Bob counts 17 stones."
    ids = [tok.bos_token_id] + tok(text, add_special_tokens=False).input_ids
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    nll = torch.nn.functional.cross_entropy(logits[:-1], torch.tensor(ids[1:])).item()
    assert perplexity(model, tok, text) == pytest.approx(math.exp(nll), rel=1e-4)
    # Blocks of 5 tokens: still a perplexity over every token, each block starting from BOS.
    assert perplexity(model, tok, text * 3, block_size=5, batch_size=3) > 1.0


def test_reward_scores_do_not_depend_on_batching(tok, tmp_path):
    random_reward_model(tok, tmp_path / "rm")
    prompts = ["What is 3 + 4?", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], "x"]
    responses = ["It is 7.", "Hello!", "I cannot help with that."]
    one = score(tmp_path / "rm", prompts, responses, batch_size=1)
    three = score(tmp_path / "rm", prompts, responses, batch_size=3)
    assert len(one) == 3 and len(set(one)) == 3
    assert three == pytest.approx(one, abs=1e-5)


def test_a_causal_lm_is_not_a_reward_model(tok, tmp_path):
    random_llama(tok, tmp_path / "lm")
    with pytest.raises(RewardModelError) as e:
        score(tmp_path / "lm", ["hi"], ["hello"])
    assert str(e.value) == (
        f"{tmp_path / 'lm'}: not a reward model (architectures ['LlamaForCausalLM']); "
        "expected an AutoModelForSequenceClassification checkpoint with num_labels=1"
    )
    with pytest.raises(RewardModelError, match=r"^LlamaForCausalLM: not a reward model \(model class\)"):
        score(random_llama(tok), ["hi"], ["hello"], tokenizer=tok)


def test_lora_adapter_resolves_and_merges_into_its_base(tok, tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model

    random_llama(tok, tmp_path / "base", seed=1)
    base = load_model(tmp_path / "base")[0]
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, lora).save_pretrained(tmp_path / "adapter")
    assert json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert resolve_base(tmp_path / "adapter") == tmp_path / "base"

    merged, merged_tok = load_model(tmp_path / "adapter")
    assert merged_tok.get_vocab() == tok.get_vocab()  # no tokenizer in the adapter dir: the base's
    ids = torch.tensor([tok("What is 3 + 4?").input_ids])
    reference = PeftModel.from_pretrained(load_model(tmp_path / "base")[0], tmp_path / "adapter")
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, reference(ids).logits, rtol=1e-4, atol=1e-5)
        assert not torch.allclose(merged(ids).logits, load_model(tmp_path / "base")[0](ids).logits)


def test_adapter_with_a_missing_base_is_one_line(tmp_path):
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text('{"base_model_name_or_path": "meta-llama/Llama-3.2-1B"}')
    with pytest.raises(CheckpointError) as e:
        load_model(tmp_path / "adapter")
    assert str(e.value) == (
        f"{tmp_path / 'adapter'}: base model 'meta-llama/Llama-3.2-1B' (adapter_config.json "
        "base_model_name_or_path) is not a local checkpoint directory; fix the path in adapter_config.json"
    )
    with pytest.raises(CheckpointError, match="neither a checkpoint"):
        load_model(tmp_path)
