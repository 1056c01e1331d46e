"""results_table: the README row and commands come from a result dir's own files."""

import json

import pytest

from launch import results_table


def _result_dir(tmp_path):
  d = tmp_path / "omniglot_x"
  (d / "eval").mkdir(parents=True)
  cmd = ("python -m launch.main --config=experiments/omniglot.py:5way1shot "
         "--workdir=results/omniglot_x --mode=evaluate --config.eval.seed=1")
  machine = dict(cpu="Some CPU", cpu_count=2, backend="cpu")
  (d / "run.json").write_text(json.dumps(dict(invocations=[dict(
      command=cmd, date="2026-11-22T10:00:00+00:00", machine=machine)])))
  (d / "config.json").write_text(json.dumps(dict(
      num_steps=60000, ways=5, shots=1, queries=1,
      eval=dict(seed=1, ways=0, shots=0, queries=15, steps=3, eval_steps=[]))))
  (d / "published.json").write_text(json.dumps(dict(
      setting="MAML 5w1s", published="98.7 ± 0.4", source="Finn et al. 2017")))
  (d / "progress.json").write_text(json.dumps(dict(
      step=2000, train_seconds=900.0, history=[[1000, 450.0], [2000, 900.0]])))
  def row(step, seed, k, mean, queries=15):
    return dict(metric="accuracy", k=k, mean=mean, ci95=0.003, episodes=600,
                checkpoint_step=step, eval_seed=seed, k_train=1, eval_ways=5, eval_shots=1,
                eval_queries=queries)
  # (step, seed, accuracy at k=3 with 15 queries, at k=10 with 1 query or None)
  for step, seed, mean, reference in [(1000, 1, 0.9, 0.99), (1000, 2, 0.5, None),
                                      (2000, 2, 0.1, None)]:
    rows = [row(step, seed, 0, 0.2), row(step, seed, 3, mean), dict(metric="loss", k=3, mean=9.0)]
    (d / "eval" / f"rows_step{step}_seed{seed}_5w1s15q_k3.jsonl").write_text(
        "\n".join(json.dumps(r) for r in rows))
    if reference is not None:  # The same parameters under another protocol.
      rows = [row(step, seed, 0, 0.2, 1), row(step, seed, 10, reference, 1)]
      (d / "eval" / f"rows_step{step}_seed{seed}_5w1s1q_k10.jsonl").write_text(
          "\n".join(json.dumps(r) for r in rows))
  (d / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in [
      dict(step=500, query_accuracy_post=0.8),
      dict(step=1000, query_accuracy_post=0.9, **{"val/query_accuracy_k3": 0.88})]))
  return d


def test_row_is_the_latest_evaluation_on_the_configs_seed_with_its_own_time(tmp_path):
  d = _result_dir(tmp_path)
  text = results_table.table([str(d)])
  row = text.splitlines()[2]
  # Seed 2's later evaluation is a re-evaluation, not the result; 1,000 steps took 450 s.
  # The re-evaluation of the same checkpoint on seed 2 stands beside it.
  assert ("| 90.00 ± 0.30 (600 episodes) | 50.00 ± 0.30 (seed 2) | 1,000 of 60,000 | 1 / 3 | "
          "0.12 h | 2026-11-22 | " in row), row
  # The other protocol is listed beside it, never taken as the result.
  assert row.endswith("| 99.00 ± 0.30 (1 query/class, k = 10, 600 episodes) |"), row
  train_cmd, eval_cmd = results_table.commands(str(d))
  assert "--mode" not in train_cmd and "eval.seed" not in train_cmd
  assert eval_cmd == train_cmd + " --mode=evaluate --config.eval.seed=2"
  assert (f"  {train_cmd} --mode=evaluate --config.eval.queries=1 --config.eval.steps=10"
          in text.splitlines())


def test_dates_span_the_first_to_the_last_invocation(tmp_path):
  d = _result_dir(tmp_path)
  run = json.loads((d / "run.json").read_text())
  later = dict(run["invocations"][0], date="2026-11-24T01:00:00+00:00")
  (d / "run.json").write_text(json.dumps(dict(invocations=run["invocations"] + [later])))
  assert "| 0.12 h | 2026-11-22 – 2026-11-24 | 2-core Some CPU, cpu |" in (
      results_table.table([str(d)]).splitlines()[2])


def test_own_protocol_is_the_largest_requested_step_not_eval_steps(tmp_path):
  d = _result_dir(tmp_path)
  config = json.loads((d / "config.json").read_text())
  config["eval"].update(steps=10, eval_steps=[0, 3])  # Scores k = 0 and 3 only.
  (d / "config.json").write_text(json.dumps(config))
  assert results_table.final_accuracy_row(str(d))["mean"] == 0.9


def test_an_unrecognised_eval_file_name_is_an_error(tmp_path):
  d = _result_dir(tmp_path)
  (d / "eval" / "rows_step1000_seed1 copy.jsonl").write_text("")
  with pytest.raises(ValueError, match="not an evaluation file name"):
    results_table.evaluations(str(d))


def test_learning_curve_figure_is_written(tmp_path):
  d = _result_dir(tmp_path)
  results_table.plot_learning_curves([str(d)], str(tmp_path / "curves.png"))
  assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_by_protocol_puts_the_own_protocol_first_and_keeps_the_others(tmp_path):
  d = _result_dir(tmp_path)
  groups = results_table.by_protocol(str(d))
  # Seed 2's evaluations are re-evaluations on a fresh seed: not on the curve.
  assert [p for p, _ in groups] == [(5, 1, 15, 3, "transductive", False, False),
                                    (5, 1, 1, 10, "transductive", False, False)]
  assert [(r["checkpoint_step"], r["mean"]) for r in groups[0][1]] == [(1000, 0.9)]
  assert [(r["checkpoint_step"], r["mean"]) for r in groups[1][1]] == [(1000, 0.99)]


def test_an_eval_file_whose_rows_name_another_checkpoint_is_an_error(tmp_path):
  d = _result_dir(tmp_path)
  src = d / "eval" / "rows_step1000_seed1_5w1s15q_k3.jsonl"
  src.rename(d / "eval" / "rows_step3000_seed1_5w1s15q_k3.jsonl")
  with pytest.raises(ValueError, match="checkpoint_step 1000 and eval_seed 1"):
    results_table.evaluations(str(d))


def test_a_batch_norm_mode_other_than_the_configs_is_another_protocol(tmp_path):
  d = _result_dir(tmp_path)
  config = json.loads((d / "config.json").read_text())
  config["bn_mode"] = "transductive_joint"  # Meta-trained so; evaluated on query batches.
  config["eval"]["bn_mode"] = "transductive"
  (d / "config.json").write_text(json.dumps(config))
  # Step 1,000 under the run's own mode, in files written before rows named their mode
  # (``train.eval_file_stem`` names the mode only when it is not meta-training's).
  own = d / "eval" / "rows_step1000_seed1_5w1s15q_k3.jsonl"
  rows = [json.loads(l) for l in open(own)]
  own.write_text("\n".join(json.dumps(dict(r, mean=0.95)) for r in rows))
  # And under the config's evaluation mode: query-batch statistics.
  (d / "eval" / "rows_step1000_seed1_5w1s15q_k3_bn_transductive.jsonl").write_text(
      "\n".join(json.dumps(dict(r, eval_bn_mode="transductive")) for r in rows))
  for path in (d / "eval").glob("*.jsonl"):
    rows = [dict(json.loads(l), bn_mode="transductive_joint") for l in open(path)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
  row = results_table.table([str(d)]).splitlines()[2]
  assert "| 90.00 ± 0.30 (600 episodes) |" in row, row
  assert row.endswith("| 99.00 ± 0.30 (1 query/class, k = 10, support+query BN statistics, "
                      "600 episodes); 95.00 ± 0.30 (15 queries/class, k = 3, support+query BN "
                      "statistics, 600 episodes) |"), row
  text = results_table.table([str(d)])
  train_cmd, _ = results_table.commands(str(d))
  assert (f"  {train_cmd} --mode=evaluate --config.eval.bn_mode=transductive_joint"
          in text.splitlines()), text


def test_a_run_moved_to_another_machine_states_each_machines_steps_and_time(tmp_path):
  d = _result_dir(tmp_path)
  # Steps 0-500 predate recorded segments (their machine is run.json's); 500 on ran on
  # another machine, started on 2026-11-28.
  amd = dict(cpu="AMD CPU", cpu_count=2, backend="cpu")
  (d / "progress.json").write_text(json.dumps(dict(
      step=2000, train_seconds=900.0,
      history=[[500, 200.0], [1000, 450.0], [1500, 700.0], [2000, 900.0]],
      segments=[dict(start_step=500, started="2026-11-28T12:00:00+00:00", machine=amd),
                dict(start_step=1500, started="2026-11-29T12:00:00+00:00", machine=amd)])))
  row = results_table.table([str(d)]).splitlines()[2]
  assert ("| 0.12 h (0.06 h + 0.07 h) | 2026-11-22 – 2026-11-28 | 2-core Some CPU, cpu "
          "(steps 0–500); 2-core AMD CPU, cpu (steps 500–1,000) |") in row, row
  # Invocations on one machine are one stretch.
  assert [(s.start, s.end, s.seconds) for s in results_table.machine_stretches(str(d), 2000)
          ] == [(0, 500, 200.0), (500, 2000, 700.0)]


def test_rotated_classes_are_another_protocol_with_their_flag(tmp_path):
  d = _result_dir(tmp_path)
  ref = d / "eval" / "rows_step1000_seed1_5w1s1q_k10.jsonl"
  rows = [dict(json.loads(l), eval_rotate=True, mean=0.97) for l in open(ref)]
  (d / "eval" / "rows_step1000_seed1_5w1s1q_k10_rot.jsonl").write_text(
      "\n".join(json.dumps(r) for r in rows))
  groups = results_table.by_protocol(str(d))
  assert [p for p, _ in groups] == [(5, 1, 15, 3, "transductive", False, False),
                                    (5, 1, 1, 10, "transductive", False, False),
                                    (5, 1, 1, 10, "transductive", True, False)]
  text = results_table.table([str(d)])
  assert text.splitlines()[2].endswith(
      "| 99.00 ± 0.30 (1 query/class, k = 10, 600 episodes); 97.00 ± 0.30 (1 query/class, "
      "k = 10, classes turned by random quarter turns, 600 episodes) |"), text
  train_cmd, _ = results_table.commands(str(d))
  assert (f"  {train_cmd} --mode=evaluate --config.eval.queries=1 --config.eval.steps=10 "
          "--config.eval.rotate=True" in text.splitlines()), text


def test_test_time_table_reads_the_tuned_curve_and_the_shots_grid(tmp_path):
  from launch import test_time_table
  d = tmp_path / "run" / "eval"
  d.mkdir(parents=True)
  tuned = [dict(metric="accuracy", k=k, mean=m, ci95=0.004, episodes=200,
                eval_inner_lr=lr, tuned_lrs=[0.1, 0.4], tuned_on=dict(episodes=200))
           for k, m, lr in [(0, 0.2, None), (1, 0.98, 0.4), (256, 0.981, 0.1)]]
  (d / "tuned_step9_seed1_test_k256_2lrs_abcd.jsonl").write_text(
      "".join(json.dumps(r) + "\n" for r in tuned))
  for shots, acc in [(1, 0.98), (2, 0.99)]:
    rows = [dict(metric=m, k=k, mean=acc if k else 0.2, ci95=0.003, episodes=200,
                 eval_shots=shots, shots=1, inner_lr=0.4, eval_inner_lr=0.4)
            for m in ("accuracy", "loss") for k in (0, 1, 16)]
    (d / f"rows_step9_seed1_test_5w{shots}s15q_k16_ab{shots}.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows))
  text = test_time_table.markdown([str(tmp_path / "run")], "accuracy")
  assert "| accuracy | 20.00 ± 0.40 | 98.00 ± 0.40 | 98.10 ± 0.40 |" in text
  assert "| rate | – | 0.4 | 0.1 |" in text
  assert "| 2 | 20.00 ± 0.30 | 99.00 ± 0.30 | 99.00 ± 0.30 |" in text
  assert text.index("| 1 | 20.00") < text.index("| 2 | 20.00")
