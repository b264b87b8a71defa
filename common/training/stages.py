"""The three stages, written once for both families (discrete: DQN → BCQ/SQV; continuous: DDPG → BCQ/SQV).

Each stage takes the resolved config (a namespace with every flag, see `main.py`) and a *family*
module (`discrete_SQV.family` or `continuous_BCQ.family`) that builds the agents and the buffer.
Agents act on batches of states, one per env: ``act_batch(states)`` (greedy),
``explore_actions(states, rng, space)`` (behavioral training), ``buffer_actions(states, rng,
low_noise, space)`` (buffer generation); and provide ``train(buffer)``, ``save``/``load`` and
``model_files(prefix)``. Files follow the reference names (DESIGN §6).
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from common.training import checkpoint

from common.data import datasets, interactions, manifest
from common.learning.agent import DamagedModel
from common.envs.make import EnvInfo, make_env
from common.errors import UserError
from common.training.guards import FiniteGuard, Interrupted, stop_on_signals, value_bound
from common.data.interactions import InteractionLog
from common.io import atomic_save_json, atomic_save_npy
from common.training.logs import RunLog
from common.envs.recsys import ItemRecommendation, compare_recommenders, top_k
from common.training.runtime import evaluate, get_device, random_actions, set_seed
from common.envs.vector import VecEnv, make_vec_env


# --- paths and commands -------------------------------------------------------------------------
def model_prefix(cfg, name: str) -> str:
    return os.path.join(cfg.out_dir, "models", f"{name}_{cfg.setting}")


def buffer_prefix(cfg) -> str:
    return os.path.join(cfg.out_dir, "buffers", f"{cfg.buffer_name}_{cfg.setting}")


def results_path(cfg, name: str) -> str:
    return os.path.join(cfg.out_dir, "results", f"{name}_{cfg.setting}.npy")


def episodes_path(cfg, name: str) -> str:
    """Raw returns of every training episode of an online stage."""
    return os.path.join(cfg.out_dir, "results", f"{name}_{cfg.setting}_episodes.npy")


def command(cfg, stage_flag: str) -> str:
    """The command line that runs ``stage_flag`` for this env/seed/output folder (for error messages)."""
    parts = ["python main.py", stage_flag, f"--env {cfg.env}", f"--seed {cfg.seed}"]
    if cfg.buffer_name != cfg.default_buffer_name and stage_flag != "--train_behavioral":
        parts.append(f"--buffer_name {cfg.buffer_name}")
    if cfg.out_dir != ".":
        parts.append(f"--out_dir {cfg.out_dir}")
    return " ".join(parts)


# --- shared pieces ------------------------------------------------------------------------------
def learning_reward(cfg, reward: float) -> float:
    return float(np.clip(reward, -1.0, 1.0)) if cfg.reward_clipping else float(reward)


def run_evaluation(agent, cfg, log: RunLog | None = None, step: int = 0) -> float:
    """Evaluate the agent; log the episode returns; return their mean."""
    returns = evaluate(agent.act_batch, lambda n: make_vec_env(cfg.env, cfg, n), cfg.seed, cfg.eval_episodes,
                       cfg.eval_eps or 0.0, agent.device, cfg.num_envs)
    if log is not None:
        log.evaluation(step, returns)
    return float(returns.mean())


def train_step(agent, buffer, log: RunLog, run: "Run") -> None:
    """One update, its loss terms watched for NaN/inf; every ``log_freq`` updates the learner's
    scalars go to the training log."""
    agent.train(buffer)
    run.guard.update(agent.iterations, agent.last_loss)
    if agent.iterations % log.every == 0:
        run.check()
        log.training(agent.iterations, agent.scalars())


class Run:
    """A training stage's checkpointing, resuming, interruption and NaN handling (see `common.training.checkpoint`).

    ``state`` goes into every checkpoint: the agent's networks, targets, optimizers and counter,
    every RNG, the evaluation history and the log rows; ``buffer`` (online stages) too.
    """

    def __init__(self, cfg, stage: str, agent, rng: np.random.Generator, log: RunLog, data, buffer=None):
        """``data``: what training batches come from (its rewards bound the value estimates);
        ``buffer``: an online stage's replay buffer, saved in every checkpoint."""
        self.cfg, self.stage, self.agent, self.rng, self.log, self.buffer = cfg, stage, agent, rng, log, buffer
        self.data = data
        agent.precision = cfg.precision  # every training stage's learner goes through here
        self.evaluations: list[float] = []
        self.episode_returns: list[float] = []  # raw returns of the training episodes (online stages)
        self.guard = FiniteGuard(agent.device)
        self.last_checkpoint: str | None = None
        self.stop = None  # set by `stop_on_signals`

    def resume(self) -> int:
        """With ``--resume``, restore the newest complete checkpoint; returns the step it was taken at.
        Without it the run starts over, and the checkpoints an earlier run of this stage and setting
        left are removed first (a later ``--resume`` must never mix the two runs)."""
        if not self.cfg.resume:
            root = checkpoint.checkpoint_dir(self.cfg, self.stage)
            if os.path.isdir(root):
                checkpoint.remove_all(self.cfg, self.stage)
                print(f"[{self.stage}] starting over: removed the checkpoints of an earlier run under {root} "
                      "(--resume continues one instead)")
            return 0
        path = checkpoint.newest(self.cfg, self.stage)
        if path is None:
            print(f"[{self.stage}] --resume: no checkpoint under {checkpoint.checkpoint_dir(self.cfg, self.stage)}; "
                  "starting from the beginning")
            return 0
        state = checkpoint.load(path, self.agent.device)
        checkpoint.load_agent_state(self.agent, state["agent"])
        checkpoint.restore_rng_states(state["rng"], self.rng)
        self.evaluations = list(state["evaluations"])
        self.episode_returns = list(state.get("episode_returns", []))
        self.log.eval_rows, self.log.train_rows = state["log"]
        self.log.start = time.time() - state["elapsed"]  # wall_seconds goes on from where it stopped
        if self.buffer is not None:
            self.buffer.load(os.path.join(path, "buffer"), capacity=self.buffer.capacity)
        self.last_checkpoint = path
        print(f"[{self.stage}] resuming from {path} (step {state['step']}, {self.agent.iterations} updates)")
        return int(state["step"])

    def check(self) -> None:
        """Stop on a non-finite loss or weight, or a diverged value estimate (`FiniteGuard.check`)."""
        self.guard.check(self.last_checkpoint, self.agent, value_bound(self.data, self.cfg.discount))

    def save_checkpoint(self, step: int) -> None:
        self.check()  # never checkpoint a diverged model
        state = {"agent": checkpoint.agent_state(self.agent), "rng": checkpoint.rng_states(self.rng),
                 "evaluations": self.evaluations, "episode_returns": self.episode_returns,
                 "log": (self.log.eval_rows, self.log.train_rows), "elapsed": time.time() - self.log.start}
        self.last_checkpoint = checkpoint.save(self.cfg, self.stage, step, state, self.buffer)

    def after(self, step: int) -> None:
        """At the end of a step: checkpoint every ``checkpoint_freq`` steps, and stop on a signal."""
        if step % self.cfg.checkpoint_freq == 0 and step < self.cfg.max_timesteps:
            self.save_checkpoint(step)
        if self.stop is not None and self.stop.requested:
            if self.last_checkpoint is None or os.path.basename(self.last_checkpoint) != f"step_{step}":
                self.save_checkpoint(step)
            raise Interrupted(self.stop.signum, f"interrupted at step {step} of {self.stage}; checkpoint saved to "
                                                f"{self.last_checkpoint}; continue with the same command plus --resume")

    def evaluate(self, step: int, bar, results: str) -> None:
        self.check()
        self.evaluations.append(run_evaluation(self.agent, self.cfg, self.log, step))
        atomic_save_npy(results, self.evaluations)
        log_eval(bar, self.stage, step, self.evaluations[-1], self.agent)

    def finish(self) -> None:
        self.check()
        checkpoint.remove_all(self.cfg, self.stage)


def save_config(cfg, name: str, extra: dict | None = None) -> None:
    atomic_save_json(os.path.join(cfg.out_dir, "results", f"{name}_{cfg.setting}_config.json"),
                     {**vars(cfg), **(extra or {})})


def progress(total: int, desc: str):
    """A progress bar (steps/s and the latest figures); silent when stderr is not a terminal."""
    bar = tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True, mininterval=1.0, disable=None)
    bar.notes = {}
    return bar


def note(bar, **values) -> None:
    """Add figures to the bar's postfix, keeping the others."""
    bar.notes.update(values)
    bar.set_postfix(bar.notes, refresh=False)


def log_eval(bar, label: str, step: int, value: float, agent=None) -> None:
    note(bar, last_eval=f"{value:.1f}")
    extra = f"  {agent.loss_summary()}" if agent is not None and agent.last_loss else ""
    bar.write(f"[{label}] step {step}: eval return {value:.2f}{extra}")


class EpisodeWriter:
    """Adds the transitions of ``n`` envs stepped together to one buffer, each episode contiguous.

    With one env, transitions go straight into the buffer (online training samples them at once).
    With several, each env's transitions wait until its episode ends (or `flush` is called), then
    the whole episode is written in order, so a frame-stacked buffer rebuilds exactly the stacks
    each env saw. A waiting transition holds only what the buffer stores (`buffer.staged`): for
    Atari one 84×84 frame, so 64 envs with 1000-step episodes hold about 450 MB.
    """

    def __init__(self, buffer, n: int):
        self.buffer, self.pending = buffer, [[] for _ in range(n)]

    def add(self, env: int, *transition) -> None:
        if len(self.pending) == 1:
            self.buffer.add(*transition)
        else:
            self.pending[env].append(self.buffer.staged(*transition))

    def end_episode(self, env: int) -> None:
        for transition in self.pending[env]:
            self.buffer.add(*transition)
        self.pending[env] = []

    def flush(self) -> None:
        for env in range(len(self.pending)):
            self.end_episode(env)


def interact(vec: VecEnv, cfg, buffer, steps: int, choose: Callable[[np.ndarray, int], np.ndarray],
             after_step: Callable[[int], None], on_episode_start: Callable[[int], None], bar,
             start: int = 0, returns: list[float] | None = None) -> list[float]:
    """Run ``steps`` env steps over the envs of ``vec``, adding every transition to ``buffer``.

    ``choose(states, t)`` returns one action per env; ``after_step(t)`` runs after each env step
    (t counts transitions); ``on_episode_start(i)`` when env i starts an episode. Returns the raw
    returns of the finished episodes. not_done is 0 only on true terminals (``terminated``), never
    on ``truncated``. A truncated step is stored too: whole-transition buffers keep its real s',
    and the frame-stacked buffer never samples it, because its s' frame is not stored (DESIGN §5).
    Env i is seeded ``seed + start + i`` at its first reset; a run resumed at step ``start`` begins
    with fresh episodes (an env's internal state is not checkpointed). Finished episodes' returns
    are appended to ``returns`` when given.
    """
    n = vec.num_envs
    writer = EpisodeWriter(buffer, n)
    states = vec.reset(seeds=[cfg.seed + start + i for i in range(n)])
    for i in range(n):
        on_episode_start(i)
    returns = [] if returns is None else returns
    first, episode_return, t = np.ones(n, bool), np.zeros(n), start
    while t < steps:
        actions = choose(states, t)
        next_states, reward, terminated, truncated = vec.step(actions)
        done = terminated | truncated
        for i in range(min(n, steps - t)):
            episode_return[i] += float(reward[i])
            writer.add(i, states[i], actions[i], next_states[i], learning_reward(cfg, reward[i]),
                       0.0 if terminated[i] else 1.0, first[i])
            after_step(t)
            t += 1
            bar.update()
            if done[i]:
                writer.end_episode(i)
                returns.append(float(episode_return[i]))
                note(bar, episodes=len(returns), last_return=f"{episode_return[i]:.1f}")
        first, states = done, next_states
        episode_return[done] = 0.0
        if done.any():
            states = vec.reset(done)
            for i in np.flatnonzero(done):
                on_episode_start(i)
    writer.flush()  # the unfinished episodes: their last step has no stored s' and is never sampled
    return returns


def open_env(cfg, family) -> EnvInfo:
    info = make_env(cfg.env, cfg)
    family.check_env(info, cfg)
    return info


RECOMMENDATION_USERS = 100  # episodes (users) of the recommender comparison


def recommendation_report(cfg, algo: str, agent, sim: ItemRecommendation) -> dict:
    """The learner against a random and a most-popular recommender on the same users: mean clicks per
    episode, hit-rate@k, NDCG@k; ``results/{algo}_{setting}_recommendation.json`` and a table."""
    rng = np.random.default_rng(cfg.seed + 100)
    popular = sim.popular_items()[None]
    catalog = torch.as_tensor(sim.item_embeddings, device=agent.device)

    def learner(states, env):
        if getattr(agent, "items", None) is not None:
            return agent.recommend(states, env.k)
        return top_k(torch.as_tensor(agent.act_batch(states), device=agent.device), catalog, env.k).cpu().numpy()

    report = compare_recommenders(cfg.env, cfg.seed, RECOMMENDATION_USERS, {
        algo: learner,
        "random": lambda states, env: rng.permutation(len(env.item_embeddings))[None, :env.k],
        "most popular": lambda states, env: popular})
    atomic_save_json(os.path.join(cfg.out_dir, "results", f"{algo}_{cfg.setting}_recommendation.json"), report)
    metrics = [m for m in report[algo] if m not in ("clicks_std", "episodes")]
    print(f"{'recommender':<14}" + "".join(f"{m:>20}" for m in metrics) + f"   ({RECOMMENDATION_USERS} users)")
    for name, row in report.items():
        print(f"{name:<14}" + "".join(f"{row[m]:>20.3f}" for m in metrics))
    return report


# --- stage 1 (and SQIL) --------------------------------------------------------------------------
def train_online(cfg, info: EnvInfo, rng, stage: str, agent, buffer, sampler, label: str) -> dict[str, Any]:
    """Learn online: act ε-greedily (uniform actions for the first ``start_timesteps`` steps), add
    every transition to ``buffer``, train on batches from ``sampler`` every ``train_freq`` steps;
    evaluate every ``eval_freq`` steps into ``results/{stage}_{setting}.npy`` and save
    ``models/{stage}_{setting}_*``."""
    log = RunLog(cfg, stage)
    run = Run(cfg, stage, agent, rng, log, sampler, buffer)
    first_step = run.resume()
    save_config(cfg, stage)
    start = time.time()

    def choose(states, t):
        if t < cfg.start_timesteps:
            return random_actions(info.action_space, rng, len(states))
        return agent.explore_actions(states, rng, info.action_space)

    def after_step(t):
        if t >= cfg.start_timesteps and (t + 1) % cfg.train_freq == 0 and sampler.size > 1:
            train_step(agent, sampler, log, run)
        if (t + 1) % cfg.eval_freq == 0 or t + 1 == cfg.max_timesteps:
            run.evaluate(t + 1, bar, results_path(cfg, stage))
            atomic_save_npy(episodes_path(cfg, stage), run.episode_returns)
            agent.save(model_prefix(cfg, stage))
        run.after(t + 1)

    vec = make_vec_env(cfg.env, cfg, 1)  # one env: the agent learns between consecutive steps
    try:
        with stop_on_signals() as run.stop, progress(cfg.max_timesteps, f"{label} {cfg.env}") as bar:
            bar.update(first_step)
            interact(vec, cfg, buffer, cfg.max_timesteps, choose, after_step, lambda i: None, bar, first_step,
                     run.episode_returns)
        run.finish()
    finally:
        log.close()  # flush TensorBoard events even when interrupted
        vec.close()
    info.env.close()
    return {"stage": stage, "final_return": run.evaluations[-1], "evaluations": run.evaluations,
            "updates": agent.iterations, "episodes": len(run.episode_returns), "seconds": time.time() - start}


def train_behavioral(cfg, family) -> dict[str, Any]:
    """Train the behavioral agent online; save ``models/behavioral_{setting}_*`` and its eval returns."""
    info = open_env(cfg, family)
    device = get_device(cfg.device)
    rng = set_seed(cfg.seed, info.env)
    agent = family.behavioral_agent(info, cfg, device)
    buffer = family.make_buffer(info, cfg, device, rng, cfg.buffer_size)
    return train_online(cfg, info, rng, "behavioral", agent, buffer, buffer, f"behavioral {family.BEHAVIORAL}")


def train_sqil(cfg, family) -> dict[str, Any]:
    """SQIL: the generated buffer as demonstrations (reward 1), the agent's own steps (reward 0);
    saves ``results/SQIL_{setting}.npy`` and ``models/SQIL_{setting}_*``."""
    if not hasattr(family, "sqil_agent"):
        raise UserError(f"--sqil needs discrete actions; {cfg.env} has a Box action space")
    info = open_env(cfg, family)
    device = get_device(cfg.device)
    rng = set_seed(cfg.seed, info.env)
    demos = load_buffer(cfg, family, info, device, rng)
    online = family.make_buffer(info, cfg, device, rng, cfg.buffer_size)
    agent = family.sqil_agent(info, cfg, device)
    return train_online(cfg, info, rng, "SQIL", agent, online, family.DemoMix(demos, online, cfg.batch_size), "SQIL")


# --- stage 2 ------------------------------------------------------------------------------------
def generate_buffer(cfg, family) -> dict[str, Any]:
    """Roll the behavioral agent out with noise for ``max_timesteps`` steps and save the buffer.

    Writes ``buffers/{buffer_name}_{setting}_*``, ``results/buffer_performance_{setting}.npy``
    (the behavioral policy evaluated, as in the reference code) and
    ``results/buffer_returns_{setting}.npy`` (raw returns of the buffer's finished episodes).
    """
    info = open_env(cfg, family)
    prefix = model_prefix(cfg, "behavioral")
    device = get_device(cfg.device)
    rng = set_seed(cfg.seed, info.env)
    agent = family.behavioral_agent(info, cfg, device)
    missing = [path for path in agent.model_files(prefix) if not os.path.exists(path)]
    if missing:
        raise UserError(f"no behavioral model at {missing[0]}; train one with: {command(cfg, '--train_behavioral')}")
    unfinished = checkpoint.newest(cfg, "behavioral")
    if unfinished:
        raise UserError(f"the behavioral training of {cfg.setting} was interrupted (its checkpoint {unfinished} is still "
                        f"there), so {prefix}_* is an unfinished agent's; finish it with: "
                        f"{command(cfg, '--train_behavioral')} --resume (or train it again without --resume)")
    try:
        agent.load(prefix)
    except DamagedModel as err:
        raise UserError(f"{err}; train one with: {command(cfg, '--train_behavioral')}") from None
    except Exception:  # a wrong shape, other layer names, a truncated file saved elsewhere
        raise UserError(f"behavioral model {prefix}_* cannot be loaded for env {cfg.env}: the file is truncated or "
                        f"corrupted, or it was trained for another env or saved by the reference code (whose layer "
                        f"names differ); train one with: {command(cfg, '--train_behavioral')}") from None
    buffer = family.make_buffer(info, cfg, device, rng, min(cfg.buffer_size, cfg.max_timesteps))
    manifest.check_free_space(os.path.dirname(buffer_prefix(cfg)), buffer.capacity * buffer.bytes_per_transition(),
                              f"a {buffer.capacity}-transition buffer")
    vec = make_vec_env(cfg.env, cfg, cfg.num_envs)
    low_noise = np.zeros(cfg.num_envs, dtype=bool)
    start = time.time()

    def new_episode(i):
        low_noise[i] = cfg.low_noise_p is not None and rng.random() < cfg.low_noise_p

    with progress(cfg.max_timesteps, f"buffer {cfg.env} ({cfg.num_envs} envs)") as bar:
        returns = interact(vec, cfg, buffer, cfg.max_timesteps,
                           lambda states, t: agent.buffer_actions(states, rng, low_noise, info.action_space),
                           lambda t: None, new_episode, bar)
    vec.close()
    log = RunLog(cfg, "buffer_performance")
    performance = run_evaluation(agent, cfg, log, cfg.max_timesteps)
    log.close()
    prefix = buffer_prefix(cfg)
    manifest.begin(prefix)
    manifest.finish(prefix, buffer.save(prefix), cfg, info, buffer)
    save_config(cfg, f"buffer_{cfg.buffer_name}")  # once the buffer it describes has landed
    atomic_save_npy(results_path(cfg, "buffer_performance"), [performance])
    atomic_save_npy(results_path(cfg, "buffer_returns"), returns)
    info.env.close()
    summary = {"stage": "buffer", "behavioral_eval": performance, "episodes": len(returns),
               "buffer_return": float(np.mean(returns)) if returns else float("nan"),
               "transitions": buffer.size, "seconds": time.time() - start}
    print(f"[buffer] {buffer.size} transitions, {len(returns)} finished episodes, mean episode return "
          f"{summary['buffer_return']:.2f}; behavioral policy eval {performance:.2f}")
    return summary


# --- stage 3 ------------------------------------------------------------------------------------
def load_buffer(cfg, family, info: EnvInfo, device, rng):
    """The offline data: the saved buffer or ``--dataset``, checked against its manifest and this env;
    a clear error for every misfit."""
    buffer = family.make_buffer(info, cfg, device, rng, 1)
    kind, location = datasets.parse(cfg.dataset) if getattr(cfg, "dataset", None) else (None, None)
    if kind in ("d4rl", "minari"):
        prefix, how = datasets.fill(buffer, cfg, info), f"a {kind} dataset recorded on {cfg.env}"
    else:
        if kind == "dqn_replay":
            prefix = datasets.prepare_dqn_replay(cfg, info, location)
            how = f"python main.py --env {cfg.env} --dataset {cfg.dataset} --ckpts {cfg.ckpts} (after deleting {prefix}_*)"
        elif kind == "interactions":
            prefix = interactions.prepare(cfg)
            how = f"python main.py --env {cfg.env} --dataset {cfg.dataset} (after deleting {prefix}_*)"
        else:
            prefix, how = buffer_prefix(cfg), command(cfg, "--generate_buffer")
        manifest.verify(prefix, cfg, info, how)
        buffer.load(prefix, how_to_create=how, mmap=cfg.mmap or kind == "dqn_replay")
    space = info.action_space
    if hasattr(space, "n") and buffer.action[:buffer.size].max() >= space.n:
        raise UserError(f"buffer {prefix} holds action {int(buffer.action[:buffer.size].max())}, but {cfg.env} has "
                        f"{space.n} actions: was it generated for another env? Regenerate it with: {how}")
    if cfg.batch_size > buffer.size:
        raise UserError(f"--batch_size {cfg.batch_size} is larger than the buffer ({buffer.size} transitions); "
                        f"use a smaller --batch_size or a bigger buffer")
    return buffer


def export_minari(cfg, family) -> int:
    """``--export_minari DATASET_ID``: this setting's saved buffer as a Minari dataset."""
    info = open_env(cfg, family)
    buffer = load_buffer(cfg, family, info, get_device("cpu"), np.random.default_rng(cfg.seed))
    if not hasattr(buffer, "next_state"):
        raise UserError("--export_minari writes whole-transition buffers (vector and MinAtar states); Atari frame "
                        "stacks are not supported")
    episodes = datasets.export_minari(buffer, cfg.export_minari, cfg.env)
    print(f"[export] {buffer.size} transitions in {episodes} episodes written as Minari dataset {cfg.export_minari}")
    info.env.close()
    return episodes


def train_offline(cfg, family, algo: str = "BCQ") -> dict[str, Any]:
    """Train BCQ or SQV on the saved buffer for ``max_timesteps`` iterations; save ``results/{algo}_{setting}.npy``."""
    info = open_env(cfg, family)
    device = get_device(cfg.device)
    rng = set_seed(cfg.seed, info.env)
    buffer = load_buffer(cfg, family, info, device, rng)
    agent = family.offline_agent(algo, info, cfg, device, buffer)
    log = RunLog(cfg, algo)
    run = Run(cfg, algo, agent, rng, log, buffer)
    run.resume()
    save_config(cfg, algo, {"augmentation": repr(getattr(agent, "augment", None))})
    start = time.time()
    try:
        with stop_on_signals() as run.stop, progress(cfg.max_timesteps, f"{algo} {cfg.env}") as bar:
            bar.update(agent.iterations)
            while agent.iterations < cfg.max_timesteps:
                train_step(agent, buffer, log, run)
                bar.update()
                if agent.iterations % cfg.eval_freq == 0 or agent.iterations == cfg.max_timesteps:
                    run.evaluate(agent.iterations, bar, results_path(cfg, algo))
                run.after(agent.iterations)
        run.check()
        agent.save(model_prefix(cfg, algo))
        run.finish()  # the checkpoints go only once the final model is on disk
    finally:
        log.close()  # flush TensorBoard events even when interrupted
    sim = getattr(info.env, "unwrapped", info.env)  # (the Atari preprocessing is no gymnasium wrapper)
    if isinstance(sim, ItemRecommendation):
        recommendation_report(cfg, algo, agent, sim)
    elif isinstance(sim, InteractionLog):
        interactions.report(cfg, algo, agent, sim)
    info.env.close()
    return {"stage": algo, "final_return": run.evaluations[-1], "evaluations": run.evaluations,
            "updates": agent.iterations, "seconds": time.time() - start}
