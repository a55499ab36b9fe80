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
- cagrad, imtl, aligned_mtl, db_mtl, gradvac: the same gradients combined as
                  LibMTL's weighting classes do (CAGrad: scipy's SLSQP on the
                  dual from 1/T, c 0.5, rescale 1; IMTL: the hybrid, IMTL-G's
                  closed form with torch.inverse on the gradients of
                  e^s L - s, s learned; Aligned-MTL: torch.linalg.eigh of G G^T,
                  scaled to the smallest kept eigenvalue; DB-MTL: the gradients
                  of log(L + 1e-8), an EMA with beta 0.9 in a T x P buffer,
                  each scaled to the largest norm; GradVac: LibMTL's loop over
                  the pairs in random order, beta 0.5, one target per pair over
                  the whole model, the target moved after every visit as in
                  the paper and in fulcrum's default);
- fairgrad:       FairGrad as its authors' code (OptMN-Lab/fairgrad): the
                  gradients gathered column by column into a P x T matrix
                  (.grad cloned, then set to None), scipy's least_squares on
                  G^T G w = w^(-1/alpha) from 1/T (alpha 1), sum_i w_i g_i
                  written into .grad and clip_grad_norm_ to 1 (without the
                  official code's factor T: fulcrum's default scale_by_tasks
                  is false);
- rep_grads_sum, mgda_rep, pcgrad_rep, cagrad_rep, imtl_rep, aligned_mtl_rep,
  gradvac_rep, fairgrad_rep, graddrop: per-task gradients of the
                  representation z (each head on its own detached copy of z,
                  T backward passes), as a T x (B*D) matrix, combined as
                  above (fairgrad_rep clips the combination to norm 1;
                  graddrop: LibMTL's sign-purity masks with leak 0, drawn per
                  element of the flattened gradient as fulcrum and TorchJD do,
                  without LibMTL's sign(z) factor and batch sum), then one
                  backward pass from z. LibMTL computes its weights from the
                  batch-summed T x D gradients instead; these use the same
                  T x (B*D) matrix as fulcrum, so both compute the same update.

Not here, because their solvers are not packaged in Debian 12: Nash-MTL (its
authors' code solves each convex problem with cvxpy and ECOS) and UPGrad
(TorchJD solves its T quadratic programs with qpsolvers and quadprog).
fulcrum-bench compares them with grads_sum / rep_grads_sum instead.

Each step does what fulcrum's trainer does around the strategy: it reads
every task's loss with .item(), checks it is finite, and accumulates the
training metrics. Output (the protocol of fulcrum-bench's children): "ok
PEAK_RSS_MB", then per measured step "wall cpu forward strategy backward
optimizer" in milliseconds; or "error MESSAGE". `--describe` prints "ok torch
VERSION blas LIBRARIES" instead.

Run it with Debian's interpreter: /usr/bin/python3 (python3-torch 1.13;
python3-scipy for cagrad and fairgrad).
"""
import argparse
import importlib.metadata
import math
import os
import random
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

# scipy.optimize, imported by main() only for the methods that use it (it
# would add to every method's start-up and resident memory).
least_squares = minimize = None

SHARED_METHODS = ("grads_sum", "mgda", "pcgrad", "gradnorm", "cagrad", "imtl", "aligned_mtl",
                  "db_mtl", "gradvac", "fairgrad")
REPRESENTATION_METHODS = ("rep_grads_sum", "mgda_rep", "pcgrad_rep", "cagrad_rep", "imtl_rep",
                          "aligned_mtl_rep", "gradvac_rep", "fairgrad_rep", "graddrop")
METHODS = ("equal",) + SHARED_METHODS + REPRESENTATION_METHODS
NEEDS_SCIPY = ("cagrad", "cagrad_rep", "fairgrad", "fairgrad_rep")
DB_BETA, DB_BETA_SIGMA = 0.9, 0.0  # LibMTL's DB_beta, DB_beta_sigma (fulcrum's defaults)


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


class ColumnGradients:
    """FairGrad's authors' gathering: an uninitialised P x T matrix whose column
    i is filled from the shared .grad after task i's backward pass (each .grad
    cloned, then set to None); the combination is written back as new .grad
    tensors."""

    def __init__(self, model):
        self.shared = list(model.trunk.parameters())
        self.sizes = [p.data.numel() for p in self.shared]

    def matrix(self, losses):
        grads = torch.Tensor(sum(self.sizes), len(losses))
        for i, loss in enumerate(losses):
            loss.backward(retain_graph=i < len(losses) - 1)
            grads[:, i].fill_(0.0)
            for k, p in enumerate(self.shared):
                if p.grad is not None:
                    begin = sum(self.sizes[:k])
                    grads[begin:begin + self.sizes[k], i].copy_(p.grad.data.detach().clone().view(-1))
            for p in self.shared:
                p.grad = None
        return grads

    def assign(self, direction):
        for k, p in enumerate(self.shared):
            begin = sum(self.sizes[:k])
            p.grad = direction[begin:begin + self.sizes[k]].contiguous().view(p.data.size()).data.clone()


def cagrad_direction(grads, c=0.5):
    """CAGrad (rescale 1) as LibMTL's CAGrad: the dual over the simplex by
    scipy's SLSQP from 1/T on the float32 Gram matrix."""
    tasks = grads.shape[0]
    gram = torch.matmul(grads, grads.t()).cpu()
    mean_norm = (gram.mean() + 1e-8).sqrt()
    start = np.ones(tasks) / tasks
    a = gram.numpy()
    b = start.copy()
    radius = (c * mean_norm + 1e-8).item()

    def dual(x):
        row = x.reshape(1, -1)
        return (row.dot(a).dot(b.reshape(-1, 1)) + radius * np.sqrt(row.dot(a).dot(x.reshape(-1, 1)) + 1e-8)).sum()

    solution = minimize(dual, start, bounds=tuple((0, 1) for _ in start),
                        constraints=({"type": "eq", "fun": lambda x: 1 - sum(x)}))
    weights = torch.Tensor(solution.x)
    combined = (grads * weights.view(-1, 1)).sum(0)
    step = radius / (combined.norm() + 1e-8)
    return (grads.mean(0) + step * combined) / (1 + c ** 2)


def imtl_weights(grads):
    """IMTL-G's closed form as LibMTL's IMTL: alpha_{2..T} = g_1 U^T (D U^T)^-1."""
    tasks = grads.shape[0]
    unit = grads / torch.norm(grads, p=2, dim=-1, keepdim=True)
    differences = grads[0:1].repeat(tasks - 1, 1) - grads[1:]
    unit_differences = unit[0:1].repeat(tasks - 1, 1) - unit[1:]
    alpha = torch.matmul(torch.matmul(grads[0], unit_differences.t()),
                         torch.inverse(torch.matmul(differences, unit_differences.t())))
    return torch.cat((1 - alpha.sum().unsqueeze(0), alpha), dim=0)


def aligned_mtl_weights(grads):
    """Aligned-MTL as LibMTL's Aligned_MTL: sigma V Lambda^-1/2 V^T 1 over the
    eigenvalues above max * T * eps (sigma from the smallest kept one)."""
    gram = torch.matmul(grads, grads.t())
    values, vectors = torch.linalg.eigh(gram)
    tolerance = torch.max(values) * max(gram.shape[-2:]) * torch.finfo().eps
    rank = int(sum(values > tolerance))
    order = torch.argsort(values, dim=-1, descending=True)
    values, vectors = values[order][:rank], vectors[:, order][:, :rank]
    balance = values[-1].sqrt() * ((vectors @ torch.diag(1 / values.sqrt())) @ vectors.t())
    return balance.sum(0)


def gradvac_direction(grads, targets, beta=0.5):
    """GradVac as LibMTL's loop (whole model: one target per ordered pair);
    the target moves after every visit (the paper; LibMTL only on a correction)."""
    tasks = grads.shape[0]
    corrected = grads.clone()
    for i in range(tasks):
        others = list(range(tasks))
        others.remove(i)
        random.shuffle(others)
        for j in others:
            cosine = torch.dot(corrected[i], grads[j]) / (corrected[i].norm() * grads[j].norm() + 1e-8)
            if cosine < targets[i, j]:
                w = corrected[i].norm() * (targets[i, j] * (1 - cosine ** 2).sqrt()
                                           - cosine * (1 - targets[i, j] ** 2).sqrt()) / (
                    grads[j].norm() * (1 - targets[i, j] ** 2).sqrt() + 1e-8)
                corrected[i] += grads[j] * w
            targets[i, j] = (1 - beta) * targets[i, j] + beta * cosine
    return corrected.sum(0)


def graddrop_direction(grads, leak=0.0):
    """GradDrop's sign-purity masks as LibMTL's GradDrop, per element of the
    flattened representation gradients."""
    tasks = grads.shape[0]
    purity = 0.5 * (1 + grads.sum(0) / (grads.abs().sum(0) + 1e-7))
    uniform = torch.rand_like(purity)
    mask = purity.gt(uniform).unsqueeze(0).repeat_interleave(tasks, dim=0) * grads.gt(0) + \
        purity.lt(uniform).unsqueeze(0).repeat_interleave(tasks, dim=0) * grads.lt(0)
    return (grads * (leak + (1 - leak) * mask)).sum(0)


def fairgrad_weights(gram, alpha=1.0):
    """FairGrad's weights as its authors' code: scipy's least_squares on
    G G^T w - w^(-1/alpha) from 1/T, w >= 0."""
    start = np.ones(gram.shape[0]) / gram.shape[0]
    a = gram.data.cpu().numpy()
    return least_squares(lambda x: np.dot(a, x) - np.power(1 / x, 1 / alpha), start,
                         bounds=(0, np.inf)).x


def clipped(direction, max_norm=1.0):
    """direction scaled as torch.nn.utils.clip_grad_norm_ scales gradients."""
    coefficient = max_norm / (float(direction.norm()) + 1e-6)
    return direction * coefficient if coefficient < 1 else direction


def row_direction(method, grads, state):
    """The combined direction of the T x N rows `grads` (no .grad touched)."""
    tasks = grads.shape[0]
    base = method[:-len("_rep")] if method.endswith("_rep") else method
    if base == "grads_sum":
        return grads.sum(0)
    if base == "rep_grads_sum":  # as the loop has always written it
        weights = torch.ones(tasks)
        return sum(weights[t] * grads[t] for t in range(tasks))
    if base == "mgda":
        weights = min_norm_weights(grads.mm(grads.t()))
        return sum(weights[t] * grads[t] for t in range(tasks))
    if base == "pcgrad":
        return pcgrad_direction(grads)
    if base == "cagrad":
        return cagrad_direction(grads)
    if base == "imtl":
        return torch.einsum("i, i... -> ...", imtl_weights(grads), grads)
    if base == "aligned_mtl":
        return torch.einsum("i, i... -> ...", aligned_mtl_weights(grads), grads)
    if base == "gradvac":
        return gradvac_direction(grads, state["targets"])
    if base == "fairgrad":
        weights = torch.Tensor(fairgrad_weights(grads.mm(grads.t())))
        return clipped((grads * weights.view(-1, 1)).sum(0))
    if base == "graddrop":
        return graddrop_direction(grads)
    if base == "db_mtl":
        state["step"] += 1
        beta = DB_BETA / state["step"] ** DB_BETA_SIGMA
        state["buffer"] = grads + beta * (state["buffer"] - grads)
        norms = state["buffer"].norm(dim=-1)
        scale = norms.max() / (norms + 1e-8)
        return sum(scale[t] * state["buffer"][t] for t in range(tasks))
    raise ValueError(f"unknown method {method}")


def describe():
    """One line: torch's version and the BLAS library it has loaded."""
    a = torch.ones(64, 64)
    (a @ a).sum()
    with open("/proc/self/maps") as maps:
        blas = sorted({line.split()[-1] for line in maps if "blas" in line.lower()})
    try:
        solvers = f" scipy {importlib.metadata.version('scipy')}"
    except importlib.metadata.PackageNotFoundError:
        solvers = " (no scipy: cagrad and fairgrad cannot run)"
    sys.stdout.write(f"ok torch {torch.__version__} blas {','.join(blas) or 'unknown'}{solvers}\n")


def main():
    if sys.argv[1:] == ["--describe"]:
        describe()
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workload", choices=["w1", "w2"], required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--method", required=True, choices=METHODS)
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
    method = args.method
    if method in NEEDS_SCIPY:
        global least_squares, minimize
        try:
            from scipy.optimize import least_squares, minimize
        except ImportError as error:
            raise RuntimeError(f"{method} needs scipy (apt-get install python3-scipy): {error}") from error
    model = Model(args.workload, tasks)
    representation = method in REPRESENTATION_METHODS
    # GradNorm's weights and IMTL's loss scales s, trained with the model's optimizer.
    scales = torch.nn.Parameter(torch.zeros(tasks)) if method in ("gradnorm", "imtl", "imtl_rep") else None
    groups = [{"params": model.parameters()}]
    if scales is not None:
        groups.append({"params": [scales]})
    optimizer = torch.optim.Adam(groups, lr=1e-3)
    source = ColumnGradients(model) if method == "fairgrad" else SharedGradients(model)
    initial_losses = None
    state = {"targets": torch.zeros(tasks, tasks), "step": 0,
             "buffer": torch.zeros(tasks, source.count) if method == "db_mtl" else None}

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

        if method in ("imtl", "imtl_rep"):  # IMTL-L's scaled losses, as LibMTL's IMTL
            losses = [scales[t].exp() * losses[t] - scales[t] for t in range(tasks)]
        elif method == "db_mtl":
            losses = [torch.log(loss + 1e-8) for loss in losses]
        if method == "equal":
            objective = torch.stack(losses).sum()
        elif representation:
            grads = []
            for t in range(tasks):
                losses[t].backward(retain_graph=True)
                grads.append(heads_in[t].grad.data.clone().view(-1))
            grads = torch.stack(grads)
            direction = row_direction(method, grads, state)
        elif method == "fairgrad":
            grads = source.matrix(losses)  # P x T
            weights = torch.Tensor(fairgrad_weights(grads.t().mm(grads)))
            direction = (grads * weights.view(1, -1)).sum(1)
        else:
            grads = source.matrix(losses)
            if method != "gradnorm":
                direction = row_direction(method, grads, state)
            else:
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
            if method == "fairgrad":
                torch.nn.utils.clip_grad_norm_(source.shared, 1.0)
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
