#!/usr/bin/python3
"""The plain-PyTorch reference loop that fulcrum-bench times beside fulcrum.

It trains the bench's workloads (W1: the GradNorm toy MLP, T = 10; W2: the
Multi-Fashion LeNet, T = 2) on the very arrays fulcrum trains on (written by
fulcrum-bench into --data), the way the popular Python MTL libraries do it:

- equal:          sum of the losses, one backward pass;
- grads_sum:      per-task gradients of the shared parameters by T backward
                  passes with retain_graph=True, each copied into a T x P
                  matrix allocated for the step (a Python loop over the
                  parameters), their sum written back into .grad. The cheapest
                  per-task-gradient step: any such method costs at least this;
- mgda, pcgrad:   the same gradients, then MGDA's min-norm solver (projected
                  gradient on the simplex, <= 250 iterations, tol 1e-5) or
                  PCGrad's projections, written with torch operations and
                  Python loops as the Python libraries write them;
- gradnorm:       GradNorm on the gradients of every shared parameter (T full
                  backward passes), weights 2 softmax-normalised learnable
                  scales trained with the model's optimizer, alpha 1.5;
- rep_grads_sum, mgda_rep: per-task gradients of the representation z (each
                  head on its own detached copy of z, T backward passes),
                  summed or combined by MGDA, then one backward pass from z.

Each step does what fulcrum's trainer does around the strategy: it reads
every task's loss with .item(), checks it is finite, and accumulates the
training metrics. Output (the protocol of fulcrum-bench's children): "ok
PEAK_RSS_MB", then per measured step "wall cpu forward strategy backward
optimizer" in milliseconds; or "error MESSAGE". `--describe` prints "ok torch
VERSION blas LIBRARIES" instead.

Run it with Debian's interpreter: /usr/bin/python3 (python3-torch 1.13).
"""
import argparse
import math
import os
import random
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def load(directory):
    arrays = {}
    with open(os.path.join(directory, "meta.txt")) as meta:
        for line in meta:
            name, dtype, *shape = line.split()
            data = np.fromfile(os.path.join(directory, name + ".bin"), dtype=dtype)
            arrays[name] = torch.from_numpy(data.reshape([int(d) for d in shape]))
    targets = []
    while f"target{len(targets)}" in arrays:
        targets.append(arrays[f"target{len(targets)}"])
    return arrays["inputs"], targets


class Model(torch.nn.Module):
    """fulcrum's MultiTaskModel: a trunk and one linear head per task."""

    def __init__(self, workload, tasks):
        super().__init__()
        if workload == "w1":
            layers, width = [], 250
            for out in (100, 100, 100, 100):
                layers += [torch.nn.Linear(width, out), torch.nn.ReLU()]
                width = out
            self.trunk = torch.nn.Sequential(*layers)
            self.heads = torch.nn.ModuleList(torch.nn.Linear(100, 100) for _ in range(tasks))
        else:
            self.trunk = torch.nn.Sequential(
                torch.nn.Conv2d(1, 10, 9), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                torch.nn.Conv2d(10, 20, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                torch.nn.Flatten(), torch.nn.Linear(500, 50), torch.nn.ReLU())
            self.heads = torch.nn.ModuleList(torch.nn.Linear(50, 10) for _ in range(tasks))


def task_loss(outputs, targets):
    if targets.dtype == torch.int64:
        return F.cross_entropy(outputs, targets)
    return F.mse_loss(outputs, targets)


class SharedGradients:
    """T backward passes with retain_graph; each task's gradients copied into
    row i of a T x P matrix, the shared .grad zeroed between tasks."""

    def __init__(self, model):
        self.shared = list(model.trunk.parameters())
        self.count = sum(p.numel() for p in self.shared)

    def matrix(self, losses):
        grads = torch.zeros(len(losses), self.count)
        for i, loss in enumerate(losses):
            loss.backward(retain_graph=True)
            begin = 0
            for p in self.shared:
                end = begin + p.numel()
                if p.grad is not None:
                    grads[i, begin:end] = p.grad.data.view(-1)
                    p.grad.zero_()
                begin = end
        return grads

    def assign(self, direction):
        begin = 0
        for p in self.shared:
            end = begin + p.numel()
            p.grad.data = direction[begin:end].contiguous().view(p.data.size()).clone()
            begin = end


def two_point(v11, v12, v22):
    """Min-norm point of the segment between two vectors, from their products:
    (weight of the first, squared norm)."""
    if v12 >= v11:
        return 0.999, v11
    if v12 >= v22:
        return 0.001, v22
    gamma = -1.0 * (v12 - v22) / (v11 + v22 - 2 * v12)
    return gamma, v22 + gamma * (v12 - v22)


def simplex_projection(y):
    """Euclidean projection onto the probability simplex (sort-based)."""
    u, _ = torch.sort(y, descending=True)
    cumulative = torch.cumsum(u, 0) - 1.0
    k = torch.arange(1, y.numel() + 1, dtype=y.dtype)
    rho = int(torch.nonzero(u - cumulative / k > 0).max())
    theta = cumulative[rho] / (rho + 1)
    return torch.clamp(y - theta, min=0.0)


def min_norm_weights(gram, max_iterations=250, tolerance=1e-5):
    """MGDA's min-norm element of the convex hull, projected-gradient style."""
    n = gram.shape[0]
    best = None
    for i in range(n):
        for j in range(i + 1, n):
            c, cost = two_point(gram[i, i], gram[i, j], gram[j, j])
            if best is None or cost < best[0]:
                best = (cost, i, j, c)
    solution = torch.zeros(n, dtype=gram.dtype)
    if best is None:
        solution[0] = 1.0
        return solution
    _, i, j, c = best
    solution[i], solution[j] = c, 1.0 - c
    if n < 3:
        return solution
    for _ in range(max_iterations):
        gradient = -1.0 * torch.mv(gram, solution)
        projected = gradient - gradient.sum() / n
        step = 1.0
        negative = projected < 0
        if negative.any():
            ratios = -solution[negative] / projected[negative]
            if (ratios > 1e-7).any():
                step = min(step, float(ratios[ratios > 1e-7].min()))
        positive = projected > 0
        if positive.any():
            ratios = (1.0 - solution[positive]) / projected[positive]
            if (ratios > 1e-7).any():
                step = min(step, float(ratios[ratios > 1e-7].min()))
        candidate = simplex_projection(projected * step + solution)
        v11 = torch.dot(solution, torch.mv(gram, solution))
        v12 = torch.dot(solution, torch.mv(gram, candidate))
        v22 = torch.dot(candidate, torch.mv(gram, candidate))
        c, _ = two_point(v11, v12, v22)
        updated = c * solution + (1 - c) * candidate
        if torch.sum(torch.abs(updated - solution)) < tolerance:
            return updated
        solution = updated
    return solution


def pcgrad_direction(grads):
    projected = grads.clone()
    n = grads.shape[0]
    for i in range(n):
        order = [j for j in range(n) if j != i]
        random.shuffle(order)
        for j in order:
            product = torch.dot(projected[i], grads[j])
            if product < 0:
                projected[i] -= product * grads[j] / grads[j].norm().pow(2)
    return projected.sum(0)


def describe():
    """One line: torch's version and the BLAS library it has loaded."""
    a = torch.ones(64, 64)
    (a @ a).sum()
    with open("/proc/self/maps") as maps:
        blas = sorted({line.split()[-1] for line in maps if "blas" in line.lower()})
    sys.stdout.write(f"ok torch {torch.__version__} blas {','.join(blas) or 'unknown'}\n")


def main():
    if sys.argv[1:] == ["--describe"]:
        describe()
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workload", choices=["w1", "w2"], required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--method", required=True,
                        choices=["equal", "grads_sum", "mgda", "pcgrad", "gradnorm",
                                 "rep_grads_sum", "mgda_rep"])
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    random.seed(0)
    inputs, targets = load(args.data)
    tasks = len(targets)
    batch = 100 if args.workload == "w1" else 256
    total = args.warmup + args.steps
    per_epoch = inputs.shape[0] // batch  # as fulcrum-bench: epochs of this many batches
    if per_epoch < 1:
        raise ValueError(f"{inputs.shape[0]} examples in --data, fewer than one batch of {batch}")
    model = Model(args.workload, tasks)
    method = args.method
    representation = method in ("rep_grads_sum", "mgda_rep")
    scales = torch.nn.Parameter(torch.zeros(tasks)) if method == "gradnorm" else None
    groups = [{"params": model.parameters()}]
    if scales is not None:
        groups.append({"params": [scales]})
    optimizer = torch.optim.Adam(groups, lr=1e-3)
    source = SharedGradients(model)
    initial_losses = None

    samples = []
    sums = [[0.0, 0.0, 0.0] for _ in range(tasks)]
    last_cpu = time.process_time()
    for b in range(total):
        start = time.perf_counter()
        if b % per_epoch == 0:
            order = torch.randperm(inputs.shape[0])
        first = (b % per_epoch) * batch
        index = order[first:first + batch]
        x = inputs.index_select(0, index)
        optimizer.zero_grad()
        z = model.trunk(x)
        heads_in = [z.detach().clone().requires_grad_() for _ in range(tasks)] if representation else [z] * tasks
        outputs, batch_targets, losses, values = [], [], [], []
        for t in range(tasks):
            outputs.append(model.heads[t](heads_in[t]))
            batch_targets.append(targets[t].index_select(0, index))
            losses.append(task_loss(outputs[t], batch_targets[t]))
            values.append(losses[t].item())
        if not all(math.isfinite(v) for v in values):
            raise FloatingPointError(f"a loss is not finite at step {b}")
        forward = time.perf_counter()

        if method == "equal":
            objective = torch.stack(losses).sum()
        elif representation:
            grads = []
            for t in range(tasks):
                losses[t].backward(retain_graph=True)
                grads.append(heads_in[t].grad.data.clone().view(-1))
            grads = torch.stack(grads)
            weights = torch.ones(tasks) if method == "rep_grads_sum" else min_norm_weights(grads.mm(grads.t()))
            direction = sum(weights[t] * grads[t] for t in range(tasks))
        else:
            grads = source.matrix(losses)
            if method == "grads_sum":
                direction = grads.sum(0)
            elif method == "mgda":
                weights = min_norm_weights(grads.mm(grads.t()))
                direction = sum(weights[t] * grads[t] for t in range(tasks))
            elif method == "pcgrad":
                direction = pcgrad_direction(grads)
            else:  # gradnorm
                if initial_losses is None:
                    initial_losses = values
                weights = tasks * F.softmax(scales, dim=-1)
                norms = torch.norm(weights.unsqueeze(1) * grads, p=2, dim=-1)
                rates = torch.tensor([v / v0 for v, v0 in zip(values, initial_losses)])
                target = (norms.mean() * (rates / rates.mean()) ** 1.5).detach()
                (norms - target).abs().sum().backward()
                direction = (weights.detach().unsqueeze(1) * grads).sum(0)
        strategy = time.perf_counter()

        if method == "equal":
            objective.backward()
        elif representation:
            z.backward(direction.view_as(z))
        else:
            source.assign(direction)
        backward = time.perf_counter()
        optimizer.step()
        optimized = time.perf_counter()

        with torch.no_grad():
            for t in range(tasks):
                out = outputs[t].detach()
                if batch_targets[t].dtype == torch.int64:
                    sums[t][0] += out.argmax(1).eq(batch_targets[t]).sum().item()
                else:
                    diff = out - batch_targets[t]
                    sums[t][0] += diff.square().sum().item()
                    sums[t][1] += diff.abs().sum().item()
                sums[t][2] += values[t]
        end = time.perf_counter()
        cpu = time.process_time()
        if b >= args.warmup:
            samples.append(((end - start) * 1e3, (cpu - last_cpu) * 1e3, (forward - start) * 1e3,
                            (strategy - forward) * 1e3, (backward - strategy) * 1e3,
                            (optimized - backward) * 1e3))
        last_cpu = cpu

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    lines = [f"ok {peak:.1f}"] + [" ".join(f"{v:.6f}" for v in s) for s in samples]
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # reported to the harness, which names the case
        sys.stdout.write(f"error {type(error).__name__}: {error}\n")
        sys.exit(1)
