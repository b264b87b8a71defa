"""Logged interactions (``--dataset interactions:FILE``): parsing both formats, the leave-last-k-out split
without leaks, the ranking metrics on hand-built lists, bad logs, and a whole run on a synthetic log."""
import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from common.errors import UserError  # noqa: E402
from common.data.interactions import (HeldOut, learn_embeddings, ranking_metrics, read_log, split,  # noqa: E402
                                 transitions)


def write(path, text):
    path.write_text(text)
    return str(path)


def test_movielens_dat_is_read_in_time_order_per_user(tmp_path):
    # user 2's rows out of time order; user 1's rows 2 and 3 share a timestamp (file order kept)
    log = read_log(write(tmp_path / "r.dat", "2::30::5::300\n1::10::4::100\n2::31::2::200\n1::11::3::150\n"
                                                  "1::12::5::150\n"), "user,item,rating,timestamp", "threshold:4")
    assert log.users.tolist() == [1, 1, 1, 2, 2]
    assert log.items.tolist() == [10, 11, 12, 31, 30]
    assert log.reward.tolist() == [1, 0, 1, 0, 1]
    assert any("share their user's previous timestamp" in n for n in log.notes)
    assert any("were put in time order" in n for n in log.notes)


def test_csv_and_tsv_with_named_columns_and_a_behavior_map(tmp_path):
    csv = write(tmp_path / "log.csv", "ts,uid,sku,kind\n5,7,100,pv\n6,7,101,buy\n4,8,100,cart\n")
    log = read_log(csv, "uid,sku,kind,ts", "map:pv=0,cart=0.5,buy=1")
    assert log.users.tolist() == [7, 7, 8] and log.items.tolist() == [100, 101, 100]
    assert log.reward.tolist() == [0.0, 1.0, 0.5]
    tsv = write(tmp_path / "log.tsv", "uid\tsku\tts\n7\t100\t5\n7\t101\t6\n")
    clicks = read_log(tsv, "uid,sku,ts", "click")
    assert clicks.items.tolist() == [100, 101] and clicks.reward.tolist() == [1.0, 1.0]


@pytest.mark.parametrize("text, columns, rule, message", [
    ("", "user,item,rating,timestamp", "threshold:4", "the file is empty"),
    ("user,item,rating,timestamp\n", "user,item,rating,timestamp", "threshold:4", "the file has no data rows"),
    ("uid,sku,ts\n1,2,3\n", "user,item,rating,timestamp", "threshold:4", "no column 'user' (its header has uid, sku, ts)"),
    ("1::2::5::9\n1::x::5::10\n", "user,item,rating,timestamp", "threshold:4", "data row 2: item id 'x' is not an integer"),
    ("1::2.5::5::9\n", "user,item,rating,timestamp", "threshold:4", "data row 1: item id '2.5' is not an integer"),
    ("1::99999999999999999::5::9\n", "user,item,rating,timestamp", "threshold:4", "is not an integer below 2^53"),
    ("1::2::5\n", "user,item,rating,timestamp", "threshold:4", "its first line has 3 fields"),
    ("1::2::good::9\n", "user,item,rating,timestamp", "threshold:4", "data row 1: rating 'good' is not a number"),
    ("1::2::5::9\n", "user,item,rating,timestamp", "map:1=0,2=1", "the log holds '5', which the map does not name"),
    ("1::2::5::9\n", "user,item,rating,timestamp", "threshold:high", "--rec_reward threshold:high: expected"),
    ("1::2::5::9\n", "user,item", "click", "--rec_columns user,item: name the user, item"),
    ("1::3::3::100\n2::5::3::102::9\n", "user,item,rating,timestamp", "threshold:4", "Expected 7 fields in line 2"),
    ("1::3::3::100\n2:3::3::100\n", "user,item,rating,timestamp", "threshold:4",
     "data row 2: is not UserID::ItemID::Rating::Timestamp"),
    ("\x00\x07\x1b,user\n1,2\n", "user,item,rating,timestamp", "threshold:4", "its first line is not text"),
])
def test_bad_logs_are_one_line_errors(tmp_path, text, columns, rule, message):
    with pytest.raises(UserError) as err:
        read_log(write(tmp_path / ("log.csv" if "," in text.split("\n")[0] else "log.dat"), text), columns, rule)
    assert message in str(err.value) and "\n" not in str(err.value)


def small_log(tmp_path, name="small.dat", users=60, items=120, seed=0):
    import synthetic_log
    log = synthetic_log.synthetic_log(users, items, 30, seed=seed)
    np.savetxt(tmp_path / name, log, fmt="%d::%d::%d::%d")
    return str(tmp_path / name), log


def test_the_split_holds_out_each_user_s_last_k_and_nothing_leaks(tmp_path):
    path, _ = small_log(tmp_path)
    log = read_log(path, "user,item,rating,timestamp", "threshold:4")
    data = split(log, history=5, holdout=4)
    starts = np.flatnonzero(np.r_[True, log.users[1:] != log.users[:-1]])
    ends = np.r_[starts[1:], len(log.users)]
    for u, (a, b) in enumerate(zip(starts, ends)):  # held out: the last 4 by time; history: the 5 before them
        held = [data.raw_items[i] if i >= 0 else None for i in data.heldout[u]]
        assert [h for h in held if h is not None] == [x for x in log.items[b - 4:b] if x in set(data.raw_items)]
        assert data.raw_items[data.history[u]].tolist() == log.items[b - 9:b - 4][::-1].tolist()  # newest first
    embeddings = learn_embeddings(data, 8, seed=0)
    # other held-out items (the future) change neither the embeddings nor the states nor the transitions
    changed = read_log(path, "user,item,rating,timestamp", "threshold:4")
    for a, b in zip(starts, ends):
        changed.items[b - 4:b] = 10_000 + np.arange(4)
        changed.reward[b - 4:b] = 1 - changed.reward[b - 4:b]
    other = split(changed, history=5, holdout=4)
    assert np.array_equal(other.raw_items, data.raw_items) and np.array_equal(other.history, data.history)
    assert (other.heldout == -1).all()  # items outside the catalog: never hit, still counted
    assert np.array_equal(learn_embeddings(other, 8, seed=0), embeddings)
    for mine, theirs in zip(transitions(data, embeddings, 5), transitions(other, embeddings, 5)):
        assert np.array_equal(mine, theirs)


def test_transitions_follow_each_user_s_training_items(tmp_path):
    path, _ = small_log(tmp_path)
    data = split(read_log(path, "user,item,rating,timestamp", "threshold:4"), history=3, holdout=2)
    emb = np.eye(len(data.raw_items), dtype=np.float32)  # one-hot: states name their items
    state, action, next_state, reward, not_done = transitions(data, emb, 3)
    first_user = data.train_items[data.train_users == 0]
    n = len(first_user) - 3
    items_in = lambda row: np.argmax(row.reshape(3, -1), axis=1).tolist()  # noqa: E731
    assert items_in(state[0]) == first_user[[2, 1, 0]].tolist() and np.argmax(action[0]) == first_user[3]
    assert items_in(next_state[0]) == first_user[[3, 2, 1]].tolist()
    assert not_done[:n, 0].tolist() == [1.0] * (n - 1) + [0.0]  # 0 at the user's last training interaction
    assert len(state) == sum(max(0, int((data.train_users == u).sum()) - 3) for u in range(len(data.history)))


def test_ranking_metrics_on_hand_built_lists():
    top = np.array([[3, 1, 2, 0, 4], [0, 1, 2, 3, 4], [4, 3, 2, 1, 0]])
    heldout = np.array([[1, 9], [7, 8], [0, -1]])  # user 0: item 1 at rank 1; user 1: none; user 2: item 0 at rank 4
    m = ranking_metrics(top, heldout, cutoffs=(1, 2, 5))
    ideal2 = 1 + 1 / np.log2(3)
    assert m["hr@1"] == 0 and m["hr@2"] == pytest.approx(1 / 3) and m["hr@5"] == pytest.approx(2 / 3)
    assert m["ndcg@2"] == pytest.approx((1 / np.log2(3)) / ideal2 / 3)
    assert m["ndcg@5"] == pytest.approx((1 / np.log2(3) + 1 / np.log2(6)) / ideal2 / 3)


def test_held_out_ranking_excludes_the_user_s_training_items(tmp_path):
    path, _ = small_log(tmp_path)
    import main
    cfg = main.resolve(main.parse_args(["--env", "InteractionLog-v0", "--dataset", f"interactions:{path}",
                                        "--out_dir", str(tmp_path), "--rec_dim", "8"]), "InteractionLog-v0")[0]
    from common.data.interactions import prepare
    held = HeldOut(prepare(cfg))
    users = np.arange(len(held.history))
    top = held.top(np.tile(np.arange(len(held.embeddings), dtype=float), (len(users), 1)), users, 20)
    for u in users:
        assert not set(top[u]) & set(held.seen_items[held.seen_offsets[u]:held.seen_offsets[u + 1]])


def test_cli_errors(tmp_path, capsys):
    import main
    path, _ = small_log(tmp_path)
    for args, message in [
        (["--env", "InteractionLog-v0"], "give both (--env InteractionLog-v0 --dataset interactions:FILE)"),
        (["--env", "Pendulum-v1", "--dataset", f"interactions:{path}"], "give both"),
        (["--env", "InteractionLog-v0", "--rec_history", "3"], "--rec_history goes with --dataset interactions:FILE"),
        (["--env", "InteractionLog-v0", "--dataset", f"interactions:{path}", "--rec_holdout", "0"],
         "--rec_holdout must be positive, got 0"),
        (["--env", "InteractionLog-v0", "--dataset", f"interactions:{path}", "--rec_holdout", "500"],
         "no user has at least --rec_holdout + --rec_history = 505 interactions"),
        (["--env", "InteractionLog-v0", "--dataset", f"interactions:{tmp_path}/none.dat"], "no such file"),
    ]:
        try:
            code = main.main([*args, "--out_dir", str(tmp_path / "out"), "--max_timesteps", "5"])
        except SystemExit as exit_:
            code = exit_.code
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err, (args, err)


def test_a_whole_run_embeddings_bcq_and_the_held_out_table(tmp_path, capsys):
    import main
    path, _ = small_log(tmp_path, users=80, items=150)
    flags = ["--env", "InteractionLog-v0", "--dataset", f"interactions:{path}", "--out_dir", str(tmp_path),
             "--max_timesteps", "60", "--eval_freq", "30", "--eval_episodes", "20", "--batch_size", "32",
             "--rec_dim", "8", "--rec_holdout", "4", "--log_freq", "20"]
    assert main.main(flags) == 0
    out = capsys.readouterr().out
    assert "held-out users, last 4 items each" in out and "item-kNN" in out
    report = json.load(open(tmp_path / "results" / "BCQ_InteractionLog-v0_0_heldout.json"))
    assert report["users"] == 80 and set(report["metrics"]) == {"BCQ", "random", "most popular", "item-kNN"}
    for row in report["metrics"].values():
        assert set(row) == {f"{m}@{k}" for m in ("hr", "ndcg") for k in (5, 10, 20)}
        assert all(0 <= v <= 1 for v in row.values())
    train = open(tmp_path / "results" / "BCQ_InteractionLog-v0_0_train.csv").read().splitlines()
    evals = np.load(tmp_path / "results" / "BCQ_InteractionLog-v0_0.npy")
    assert len(evals) == 2 and np.isfinite(evals).all() and len(train) == 1 + 3  # header + 3 logged updates
    prefix = [p for p in os.listdir(tmp_path / "buffers") if p.endswith("_item_embeddings.npy")]
    assert len(prefix) == 1  # embeddings saved beside the cached buffer, used through --item_embeddings env
    assert main.main([*flags, "--sqv"]) == 0  # the cache is reused (no second "[interactions]" line)
    assert "[interactions]" not in capsys.readouterr().out


def test_the_user_s_own_embeddings_indexed_by_item_id(tmp_path, capsys):
    import main
    path, log = small_log(tmp_path)
    table = np.random.default_rng(0).normal(size=(log[:, 1].max() + 1, 6)).astype(np.float32)
    np.save(tmp_path / "mine.npy", table)
    flags = ["--env", "InteractionLog-v0", "--dataset", f"interactions:{path}", "--out_dir", str(tmp_path / "out"),
             "--item_embeddings", str(tmp_path / "mine.npy"), "--max_timesteps", "4", "--eval_freq", "4",
             "--eval_episodes", "2", "--batch_size", "8"]
    assert main.main(flags) == 0
    catalog = [p for p in (tmp_path / "out" / "buffers").iterdir() if p.name.endswith("_item_embeddings.npy")]
    raw = np.load(str(catalog[0]).replace("_item_embeddings.npy", "_raw_items.npy"))
    expected = table[raw] / np.linalg.norm(table[raw], axis=1, keepdims=True)
    assert np.allclose(np.load(catalog[0]), expected, atol=1e-6)  # row i of the file embeds item id i
    np.save(tmp_path / "short.npy", table[:10])
    assert main.main([*flags[:-8], "--item_embeddings", str(tmp_path / "short.npy"), "--max_timesteps", "4"]) == 2
    assert "has 10 rows, but the log's training part holds item id" in capsys.readouterr().err


def test_synthetic_log_small_catalogues_and_bad_arguments(tmp_path, capsys):
    """Every catalogue size it accepts works (a small one can leave a genre empty); what it cannot make or
    write is one line, exit 2, no file."""
    import synthetic_log
    for items in range(40, 101, 10):
        for seed in range(4):
            log = synthetic_log.synthetic_log(5, items, 20, seed=seed)
            assert log[:, 1].min() >= 1 and log[:, 1].max() <= items
    (tmp_path / "a_file").write_text("")
    for argv, message in (([str(tmp_path / "x.dat"), "--mean_per_user", "nan"], "20 <= --mean_per_user <= 1e4"),
                          ([str(tmp_path / "x.dat"), "--items", str(10**11)], "40 <= --items <= 1e7"),
                          ([str(tmp_path / "x.dat"), "--seed", "-1"], "--seed must be a non-negative integer"),
                          ([str(tmp_path)], "is not a file name"),
                          ([str(tmp_path / "a_file" / "x.dat"), "--users", "3", "--items", "40"], "a_file is a file, not a folder"),
                          (["/proc/no/x.dat", "--users", "3", "--items", "40"], "cannot write")):
        with pytest.raises(SystemExit) as exit_:
            synthetic_log.main(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and message in err and err.count("\n") == 1, err
    assert sorted(os.listdir(tmp_path)) == ["a_file"]
