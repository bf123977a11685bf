# %% [markdown]
# # 09 · Adversarial robustness: FGSM, PGD and certified bounds
#
# A classifier that is right on clean inputs can be wrong on inputs changed by
# an amount a human would not notice. Slide 9 of the deck proposes
# *adversarial training*: train on attacked inputs. This lesson builds the
# attacks, trains against them, and then goes one step further: *proving*
# that no attack inside a given budget can change a prediction.
#
# **In this lesson you will**
# 1. reproduce the slide's training loop and find what is wrong with it, by running it;
# 2. write the L∞ projection and FGSM, and use labkit's PGD (Madry et al. 2018);
# 3. measure robust accuracy against the attack budget ε for a standard and an adversarially trained model;
# 4. explore attacks on single digits with an ε slider;
# 5. compute certified bounds with interval bound propagation (Gowal et al. 2018) and train for them.
#
# Everything runs on scikit-learn's bundled 8×8 handwritten digits (1,797
# images, no download) with a small MLP, so each model trains in a second or two.

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

import labkit
from labkit import classifiers as clf
from labkit import robustness as rb
from labkit.exercises import card, check

device = labkit.setup(seed=0)
digits = clf.load_digits(test_fraction=0.25, seed=0, device=device)
x_train, y_train = digits.x_train.view(-1, 8, 8), digits.y_train  # images, for plotting
x_test, y_test = digits.x_test.view(-1, 8, 8), digits.y_test
print(f"train {tuple(x_train.shape)}, test {tuple(x_test.shape)}, pixels in [{x_train.min():.0f}, {x_train.max():.0f}]")

fig, axes = plt.subplots(1, 8, figsize=(8, 1.3))
for ax, img, label in zip(axes, x_test[:8].cpu(), y_test[:8].cpu()):
    ax.imshow(img, cmap="gray_r", vmin=0, vmax=1)
    ax.set_title(int(label), fontsize=9)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## 1. The slide's approach
#
# The slide trains on inputs moved by ε in the direction of the sign of the
# loss gradient. Here is its loop, rewritten in a few lines and kept faithful
# to its structure (a list of batches plays the data loader):

# %%
def batches(x, y, size=64, seed=0):
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed)).to(x.device)
    return [(x[order[i:i + size]].clone(), y[order[i:i + size]]) for i in range(0, len(x), size)]


def slide_adversarial_training(model, loader, epsilon=0.1, num_epochs=1, grad_log=None):
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters())
    for _ in range(num_epochs):
        for inputs, labels in loader:
            inputs.requires_grad = True
            loss = criterion(model(inputs), labels)
            loss.backward()
            adversarial_inputs = inputs + epsilon * inputs.grad.sign()
            inputs.grad.zero_()
            adv_loss = criterion(model(adversarial_inputs), labels)
            adv_loss.backward()
            optimizer.step()
            if grad_log is not None:
                grad_log.append(model[-1].weight.grad.norm().item())
    return adversarial_inputs

# %% [markdown]
# ### Bug hunt
#
# It runs without an error and prints decreasing-looking losses. Each defect
# below is silent, so we demonstrate it by running the code.
#
# **Bug 1: gradients accumulate.** Nothing ever calls `optimizer.zero_grad()`,
# so `.grad` holds the sum of the gradients of *every* batch so far and each
# step follows a growing pile of stale gradients. The norm of the last layer's
# gradient after each of the first eight batches:

# %%
grad_log = []
_ = slide_adversarial_training(clf.make_mlp(hidden=(64, 64), seed=0, device=device), batches(x_train, y_train)[:8], grad_log=grad_log)
print("gradient norm after each batch:", [round(g, 3) for g in grad_log])

# %% [markdown]
# **Not a bug: clean plus adversarial gradient.** The first `loss.backward()`
# gives the input gradient for the attack, and it also writes the *clean*
# loss's gradient into every parameter's `.grad`, so the update follows clean
# plus adversarial gradients. That is the mixed objective Goodfellow, Shlens
# and Szegedy (2015) train with, $\alpha L(x) + (1-\alpha) L(x_{\text{adv}})$ with
# $\alpha = 1/2$ (times two), a legitimate choice, not Madry et al.'s purely
# adversarial one. If the code meant the mixed objective it should say so; if it
# meant Madry's, it is wrong. Either way it differs from the adversarial
# gradient:
#
# **Bug 2: the adversarial input is not detached.** `adversarial_inputs` still
# hangs off `inputs` in the autograd graph, so the second backward also flows
# into `inputs.grad`, work that is wasted and a trap for any code that reads
# `inputs.grad` afterwards. On one fresh batch:

# %%
model = clf.make_mlp(hidden=(64, 64), seed=0, device=device)
inputs, labels = batches(x_train, y_train)[0]
inputs.requires_grad = True
F.cross_entropy(model(inputs), labels).backward()
adversarial_inputs = inputs + 0.1 * inputs.grad.sign()
inputs.grad.zero_()
F.cross_entropy(model(adversarial_inputs), labels).backward()
slide_grad = model[-1].weight.grad
(adv_grad,) = torch.autograd.grad(F.cross_entropy(model(adversarial_inputs.detach()), labels), model[-1].weight)
print(f"relative gap between the slide's update (the mixed objective) and the adversarial gradient: {((slide_grad - adv_grad).norm() / adv_grad.norm()).item():.3f}")
print(f"inputs.grad after the adversarial backward is non-zero: {bool(inputs.grad.abs().sum() > 0)}")

# %% [markdown]
# **Bug 3: the adversarial inputs leave the valid range.** Pixels live in
# [0, 1], but `inputs + ε·sign(g)` is never clamped: the white background
# becomes −0.1, an image that cannot exist. The attack is also a single
# unprojected FGSM step with no random start. Single-step training *can* work:
# Wong, Rice and Kolter (2020) match PGD training with FGSM from a random start
# and a step of about 1.25ε; without the random start it is prone to
# "catastrophic overfitting", robust to FGSM and not to PGD. Multi-step PGD
# (Madry et al. 2018) is the safer default, not a necessity.

# %%
outside = ((adversarial_inputs < 0) | (adversarial_inputs > 1)).float().mean().item()
print(f"pixels outside [0, 1]: {outside:.3f}; range [{adversarial_inputs.min().item():.2f}, {adversarial_inputs.max().item():.2f}]")

# %% [markdown]
# **The consequence.** Trained for 5 epochs, the slide's loop reaches a clean
# accuracy far below the same network trained normally, with no error and no
# warning. The fair comparison is at the slide's own budget (5 epochs, batches
# of 64, Adam at its default learning rate 1e-3), not against section 2's
# 25-epoch model, so we train that control beside it:

# %%
slide_model = clf.make_mlp(hidden=(64, 64), seed=0, device=device)
_ = slide_adversarial_training(slide_model, batches(x_train, y_train), num_epochs=5)
same_budget = clf.make_mlp(hidden=(64, 64), seed=0, device=device)
_ = clf.train_classifier(same_budget, x_train, y_train, epochs=5, batch_size=64, lr=1e-3)

print(f"slide's loop, 5 epochs                    clean test accuracy: {clf.accuracy(slide_model, x_test, y_test):.3f}")
print(f"standard training, same budget (5 epochs) clean test accuracy: {clf.accuracy(same_budget, x_test, y_test):.3f}")

# %% [markdown]
# **Seed 003's PGD trainer** fixes the missing `zero_grad` in its training
# step and adds a projection, but its attack never runs: after the first step,
# `inputs_adv` is rebuilt inside `torch.no_grad()`, so it is a new tensor with
# no `.grad`. (It also has no random start, and its `loss.backward()` fills
# the parameters' gradients during the attack.) A faithful copy:

# %%
def seed_pgd(model, inputs, targets, epsilon=0.1, alpha=0.01, steps=10):
    inputs_adv = inputs.clone().detach().requires_grad_(True)
    for _ in range(steps):
        loss = F.cross_entropy(model(inputs_adv), targets)
        loss.backward()
        with torch.no_grad():
            inputs_adv = inputs_adv + alpha * inputs_adv.grad.sign()
            inputs_adv = torch.clamp(inputs_adv, inputs - epsilon, inputs + epsilon)
            inputs_adv = torch.clamp(inputs_adv, 0, 1)
        inputs_adv.grad.zero_()
    return inputs_adv

try:
    seed_pgd(clf.make_mlp(hidden=(64, 64), seed=0, device=device), x_test[:4], y_test[:4])
except AttributeError as exc:
    print("AttributeError:", exc)

# %% [markdown]
# ## 2. The corrected attacks
#
# The L∞ threat model allows any $x'$ with $\|x' - x\|_\infty \le \varepsilon$
# that is still a valid image. Both constraints are boxes, so projecting onto
# their intersection is a coordinatewise clip.

# %%
card("09.project_linf")

# %% [markdown]
# Write `project_linf(x_adv, x, eps, clamp=(0.0, 1.0))`: clip `x_adv` to
# $[x - \varepsilon, x + \varepsilon]$, then to `clamp` (skip that when `clamp`
# is `None`). Raise `ValueError` when `eps < 0`.

# %%
def project_linf(x_adv, x, eps, clamp=(0.0, 1.0)):
    ### BEGIN SOLUTION
    if eps < 0:
        raise ValueError("eps must be >= 0")
    x_adv = torch.minimum(torch.maximum(x_adv, x - eps), x + eps)
    if clamp is not None:
        x_adv = x_adv.clamp(clamp[0], clamp[1])
    return x_adv
    ### END SOLUTION

# %%
check("09.project_linf", project_linf)

# %% [markdown]
# **FGSM** (Goodfellow, Shlens and Szegedy 2015, eq. 3) takes one step of size
# ε along the sign of the input gradient, the L∞-steepest ascent direction of a
# linearised loss: $x' = \mathrm{clip}_{[0,1]}\big(x + \varepsilon\,\mathrm{sign}(\nabla_x L(f(x), y))\big)$.

# %%
card("09.fgsm")

# %% [markdown]
# Write `fgsm(model, x, y, eps, clamp=(0.0, 1.0))` returning a detached tensor.
# Take the gradient of the cross-entropy with respect to the input only
# (`torch.autograd.grad`), so the model's `.grad` fields stay untouched; raise
# `ValueError` when `eps < 0`. You may use your `project_linf`.

# %%
def fgsm(model, x, y, eps, clamp=(0.0, 1.0)):
    ### BEGIN SOLUTION
    if eps < 0:
        raise ValueError("eps must be >= 0")
    x = x.detach()
    x_req = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(x_req), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x_req)
    return project_linf(x + eps * grad.sign(), x, eps, clamp).detach()
    ### END SOLUTION

# %%
check("09.fgsm", fgsm)

# %% [markdown]
# **PGD** (Madry et al. 2018, eq. 2 and §2.1) repeats the step with a smaller
# size α and projects after each one, starting from a uniform random point of
# the ball:
#
# $$x^{0} = x + U(-\varepsilon, \varepsilon), \qquad x^{t+1} = \Pi_{B_\infty(x,\varepsilon)\cap[0,1]^d}\big(x^{t} + \alpha\,\mathrm{sign}(\nabla_x L(f(x^{t}), y))\big).$$
#
# `labkit.robustness.pgd` does this with one forward and one backward pass
# per step over the whole batch. With no random start, one step and α = ε it
# *is* FGSM, so it can only be stronger:

# %%
standard = clf.make_mlp(hidden=(64, 64), seed=0, device=device)
_ = clf.train_classifier(standard, x_train, y_train, epochs=25, lr=5e-3)
one_step = rb.pgd(standard, x_test, y_test, eps=0.1, alpha=0.1, steps=1, random_start=False)
print("PGD with 1 step, no start, α = ε equals FGSM:", torch.equal(one_step, rb.fgsm(standard, x_test, y_test, 0.1)))
x_adv = rb.pgd(standard, x_test, y_test, eps=0.1, alpha=0.025, steps=20, generator=torch.Generator().manual_seed(0))
print(f"largest |x_adv - x| = {(x_adv - x_test).abs().max().item():.3f}, pixel range [{x_adv.min().item():.2f}, {x_adv.max().item():.2f}]")

# %% [markdown]
# ## 3. Robust accuracy against ε
#
# Adversarial training (Madry et al. 2018) solves the saddle-point problem
# $\min_\theta \mathbb{E}\,\max_{\|\delta\|_\infty\le\varepsilon} L(f_\theta(x+\delta), y)$:
# each batch is replaced by PGD examples against the current model, then one
# ordinary step (zero the gradients, one backward, one optimiser step).
# We train at ε = 0.1 with a 2-step PGD (α = 1.25ε, so each step can reach the
# boundary) and compare with the standard model.

# %%
adv_trained = clf.make_mlp(hidden=(64, 64), seed=0, device=device)
_ = clf.train_classifier(adv_trained, x_train, y_train, epochs=20, batch_size=256, lr=1e-2,
                         loss_fn=rb.robust_loss("pgd", eps=0.1, pgd_steps=2))

eps_grid = [0.0, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2]
curves = {}
for name, model in {"standard": standard, "adversarially trained": adv_trained}.items():
    curves[f"{name}, FGSM"] = [rb.robust_accuracy(model, x_test, y_test, e, attack="fgsm") for e in eps_grid]
    curves[f"{name}, PGD-20"] = [rb.robust_accuracy(model, x_test, y_test, e, attack="pgd", steps=20) for e in eps_grid]
fig = rb.plot_robustness_curves(curves, eps_grid, "Test accuracy under attack (8×8 digits)")
plt.show()
print("ε     " + "  ".join(f"{e:5.3f}" for e in eps_grid))
for name, values in curves.items():
    print(f"{name:<30}" + "  ".join(f"{v:5.3f}" for v in values))

# %% [markdown]
# Read the table: at ε = 0.1 (a tenth of the pixel range) PGD brings the
# standard model from about 0.96 to about 0.34, while the adversarially trained
# model keeps about 0.74, at almost no cost in clean accuracy. PGD is
# at or below FGSM at every ε, for both models. For the adversarially trained
# model the gap keeps widening with ε; for the standard model it is largest
# near ε = 0.1, before both attacks drive accuracy towards zero. A model that
# looks robust to FGSM only may not be.
#
# ### The ε widget
#
# Pick a test image and a model, and drag ε: the middle panel is the
# perturbation PGD found (red up, blue down), the right panel what the model
# sees. Watch the ε at which the standard model gives in, and how much more
# the adversarially trained one needs; its perturbations also start to look
# like strokes of other digits.

# %% tags=["nbval-ignore-output"]
rb.attack_widget({"standard": standard, "adversarially trained": adv_trained}, x_test[:40], y_test[:40])

# %% [markdown]
# ## 4. Certified robustness with interval bound propagation
#
# An attack that fails proves nothing: a stronger one might succeed.
# **Interval bound propagation** (IBP; Gowal et al. 2018) computes, for the whole
# ε-ball at once, a lower and an upper bound on every logit. If the true class's
# lower bound beats every other class's upper bound, *no* input in the ball is
# misclassified: the prediction is **certified**.
#
# The input box is $[\mathrm{clip}(x-\varepsilon), \mathrm{clip}(x+\varepsilon)]$.
# A ReLU is monotone, so it maps bounds to bounds. A linear layer $Wz + b$ maps
# the box with centre $\mu$ and radius $r$ to the box with centre $W\mu + b$ and
# radius $|W|\,r$ (Gowal et al. 2018, eq. 6).

# %%
card("09.ibp_linear")

# %% [markdown]
# Write `ibp_linear(lower, upper, weight, bias)` returning `(new_lower, new_upper)`
# for a batch of boxes of shape `(batch, n_in)`, a `weight` of shape
# `(n_out, n_in)` and a `bias` that may be `None`. Raise `ValueError` when any
# `lower > upper`.

# %%
def ibp_linear(lower, upper, weight, bias=None):
    ### BEGIN SOLUTION
    if (lower > upper).any():
        raise ValueError("lower must be <= upper")
    centre, radius = (upper + lower) / 2, (upper - lower) / 2
    centre = centre @ weight.t()
    if bias is not None:
        centre = centre + bias
    radius = radius @ weight.abs().t()
    return centre - radius, centre + radius
    ### END SOLUTION

# %%
check("09.ibp_linear", ibp_linear)

# %% [markdown]
# `labkit.robustness.ibp_bounds` chains this through a `Sequential` of Linear,
# ReLU and Flatten layers. The bounds must contain the logits of every point of
# the ball: we check that on 200 random corners of the ball for 20 test images, and
# that they collapse to the logits at ε = 0.

# %%
with torch.no_grad():
    x_small = x_test[:20]
    lower, upper = rb.ibp_bounds(standard, x_small, 0.02)
    gen = torch.Generator().manual_seed(0)
    inside = True
    for _ in range(200):
        corner = (x_small + 0.02 * (2 * torch.randint(0, 2, x_small.shape, generator=gen) - 1).to(device)).clamp(0, 1)
        logits = standard(corner)
        inside &= bool(((logits >= lower - 1e-5) & (logits <= upper + 1e-5)).all())
    low0, up0 = rb.ibp_bounds(standard, x_small, 0.0)
print("all sampled logits inside the bounds:", inside)
print("bounds at ε = 0 equal the logits:", torch.allclose(low0, standard(x_small)) and torch.allclose(up0, standard(x_small)))

# %% [markdown]
# Seed 003's certifier starts from $[x - \varepsilon, x + \varepsilon]$ without
# clipping to the valid range. That is still sound, just looser: on the white
# background, half of the box is images that cannot exist, and the bounds widen.
# (It also loops over `model.layers`, which a `Sequential` does not have, and
# certifies one image at a time in a Python loop.)

# %%
for clamp in [(0.0, 1.0), None]:
    lo_b, up_b = rb.ibp_bounds(standard, x_test, 0.02, clamp=clamp)
    print(f"clamp={clamp!s:<10}  mean logit interval width {(up_b - lo_b).mean().item():7.3f}")

# %% [markdown]
# ### Reproducing a reference result: IBP training (Gowal et al. 2018)
#
# Gowal et al. train on the worst-case logits $\hat z$ (lower bound for the
# true class, upper bounds for the others):
# $L = \kappa\,\mathrm{CE}(z, y) + (1-\kappa)\,\mathrm{CE}(\hat z, y)$ (eq. 8),
# ramping ε up from 0 and κ down from 1 to 0.5. Their finding, on MNIST and
# CIFAR-10: a normally or adversarially trained network can be certified at
# almost no ε, while an IBP-trained one is certified on most of the test set,
# close to its accuracy under PGD. In miniature, at the ε = 0.1 it was trained for:

# %%
ibp_trained = clf.make_mlp(hidden=(64, 64), seed=0, device=device)
_ = clf.train_classifier(ibp_trained, x_train, y_train, epochs=20, batch_size=256, lr=1e-2,
                         loss_fn=rb.robust_loss("ibp", eps=0.1))

models = {"standard": standard, "adversarially trained": adv_trained, "IBP trained": ibp_trained}
cert_grid = [0.0, 0.01, 0.02, 0.05, 0.1, 0.15]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
certified = {name: [rb.certified_accuracy(m, x_test, y_test, e) for e in cert_grid] for name, m in models.items()}
pgd_acc = {name: [rb.robust_accuracy(m, x_test, y_test, e) for e in cert_grid] for name, m in models.items()}
rb.plot_robustness_curves(certified, cert_grid, "Certified accuracy (IBP)", ax=axes[0])
rb.plot_robustness_curves(pgd_acc, cert_grid, "Accuracy under PGD-20", ax=axes[1])
plt.tight_layout()
plt.show()
print(f"{'model':<24}{'clean':>7}{'PGD ε=0.1':>11}{'certified ε=0.1':>17}{'certified ε=0.02':>18}")
for name, m in models.items():
    print(f"{name:<24}{clf.accuracy(m, x_test, y_test):7.3f}{pgd_acc[name][4]:11.3f}{certified[name][4]:17.3f}{certified[name][2]:18.3f}")

# %% [markdown]
# As in the paper: at ε = 0.1 the standard and the PGD-trained models certify
# nothing, although the PGD-trained one resists the attack on most images;
# the IBP-trained model is certified on most test digits (about 0.61), below
# its accuracy under PGD (about 0.76), which is as high as the PGD-trained model's.
# Certified accuracy is a proven lower bound on robust accuracy, and accuracy
# under one attack an upper bound, so the true value lies between the two
# panels. The price is a few points of clean accuracy.
#
# "Certifies nothing" is a statement about IBP, not about the PGD-trained model.
# IBP's boxes are loose on a network that was not trained to keep them tight.
# A tighter certifier replaces each ReLU whose input may have either sign by
# its convex hull and solves a small linear programme per class
# (`rb.lp_certified`, the triangle relaxation of Ehlers 2017 and Wong and
# Kolter 2018). It is still sound, and much slower, so we run it on the first
# ten test digits only:

# %%
x_few, y_few = x_test[:10], y_test[:10]
for eps in (0.05, 0.1):
    ibp_ok = rb.certified(adv_trained, x_few, y_few, eps)
    lp_ok = rb.lp_certified(adv_trained, x_few, y_few, eps)
    print(f"PGD-trained model, ε = {eps}: certified by IBP {int(ibp_ok.sum())} of 10, by the LP relaxation {int(lp_ok.sum())} of 10")

# %% [markdown]
# The LP relaxation certifies the PGD-trained model where IBP certifies nothing;
# at ε = 0.1 it, too, proves very little for this model. Exact verifiers
# (mixed-integer programming, Tjeng, Xiao and Tedrake 2019) go further still,
# and CROWN (Zhang et al. 2018) gets most of the LP's tightness at a fraction
# of its cost. The gap between the two panels above is partly the looseness of
# the certifier, not only the model.
#
# ## Key takeaways
# * Zero the gradients every step; take attack gradients with `torch.autograd.grad` on the input only; detach adversarial inputs before the training forward.
# * An L∞ attack must stay in the ε-ball *and* the valid input range: project after every step.
# * Evaluate with PGD (random start, several steps), never only FGSM: FGSM overstates robustness.
# * Training on clean plus adversarial loss is Goodfellow et al.'s mixed objective, a choice to state, not a bug; single-step training works with a random start (Wong et al. 2020).
# * Adversarial training buys empirical robustness for a small cost in clean accuracy; IBP training buys robustness that IBP's cheap bounds can *certify*. A PGD-trained model may be certifiable too, by exact or tighter (and costlier) verifiers.
#
# ## Further reading
# * I. Goodfellow, J. Shlens, C. Szegedy (2015), *Explaining and Harnessing Adversarial Examples.* ICLR.
# * A. Madry, A. Makelov, L. Schmidt, D. Tsipras, A. Vladu (2018), *Towards Deep Learning Models Resistant to Adversarial Attacks.* ICLR.
# * S. Gowal, K. Dvijotham, R. Stanforth et al. (2018), *On the Effectiveness of Interval Bound Propagation for Training Verifiably Robust Models.* arXiv:1810.12715.
# * E. Wong, L. Rice, J. Z. Kolter (2020), *Fast is better than free: revisiting adversarial training.* ICLR (single-step training with a random start, and when it fails).
# * E. Wong, J. Z. Kolter (2018), *Provable defenses against adversarial examples via the convex outer adversarial polytope.* ICML; R. Ehlers (2017), *Formal verification of piece-wise linear feed-forward neural networks.* ATVA.
# * V. Tjeng, K. Xiao, R. Tedrake (2019), *Evaluating robustness of neural networks with mixed integer programming.* ICLR.
# * H. Zhang, T.-W. Weng, P.-Y. Chen, C.-J. Hsieh, L. Daniel (2018), *Efficient neural network robustness certification with general activation functions* (CROWN). NeurIPS.
# * N. Carlini, A. Athalye, N. Papernot et al. (2019), *On Evaluating Adversarial Robustness.* arXiv:1902.06705.
