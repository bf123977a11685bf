# %% [markdown]
# # 13 · Monitoring: drift and anomaly detectors on a live stream
#
# A model that passed every evaluation can still go wrong in production: the
# users change, an upstream component is updated, someone starts probing it.
# Slide 13 proposes a monitor that z-scores each observation and fits a trend
# line. This lesson tests that monitor, then builds the detectors that
# statistical process control has used for seventy years and measures them on
# a simulated production stream.
#
# **In this lesson you will**
# 1. reproduce the slide's monitor and demonstrate its bugs by running it;
# 2. simulate a stream with a sustained drift and short attack bursts;
# 3. implement the EWMA and CUSUM statistics yourself, and use labkit's Page–Hinkley, rolling z-score, Kolmogorov–Smirnov and Mahalanobis detectors;
# 4. measure detection delay and false-alarm rate per detector, and add an alert rule;
# 5. reproduce the textbook average run lengths of Page's CUSUM;
# 6. monitor the course's real assistant through a jailbreak campaign and a bad model update;
# 7. replay the stream in a dashboard.

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

import labkit
from labkit import monitoring as mon
from labkit.exercises import card, check

device = labkit.setup(seed=0)

# %% [markdown]
# ## 1. The slide's monitor
#
# The slide fits a baseline mean and standard deviation once, flags an
# observation whose |z| exceeds 2, and reports a trend from the sign of a
# line fitted to all anomaly scores so far. In a few lines of our own:

# %%
class SlideMonitor:
    def __init__(self, threshold=2.0):
        self.threshold, self.mean, self.std, self.scores = threshold, 0.0, 1.0, []

    def update_baseline(self, data):
        self.mean, self.std = np.mean(data), np.std(data)

    def detect(self, x):
        self.scores.append(abs((x - self.mean) / self.std))
        return self.scores[-1] > self.threshold

    def trend(self):
        slope = np.polyfit(range(len(self.scores)), self.scores, 1)[0]
        return "increasing" if slope > 0 else "decreasing" if slope < 0 else "stable"

# %% [markdown]
# ### Bug hunt
#
# **Bug 1: "stable" is unreachable.** A fitted slope is a floating-point
# number computed from noisy data; it is essentially never exactly 0. On 200
# streams with no change at all:

# %%
rng = np.random.default_rng(0)
verdicts = []
for _ in range(200):
    m = SlideMonitor()
    m.update_baseline(rng.normal(size=1000))
    for x in rng.normal(size=100):
        m.detect(x)
    verdicts.append(m.trend())
print({v: verdicts.count(v) for v in ("increasing", "decreasing", "stable")})

# %% [markdown]
# A coin toss between "increasing" and "decreasing", and never "stable". A
# trend needs a test (is the slope significantly different from 0?) or, better,
# a change detector with a known false-alarm rate.
#
# **Bug 2: a per-observation |z| > 2 rule cries wolf.** Under the baseline
# distribution, $P(|z| > 2) = 2(1 - \Phi(2)) \approx 4.6\,\%$: one false
# alarm every 22 requests, forever.

# %%
m = SlideMonitor()
m.update_baseline(rng.normal(size=1000))
healthy = rng.normal(size=2000)
alarms = sum(m.detect(x) for x in healthy)
print(f"alarms on 2,000 healthy requests: {alarms} ({alarms / 2000:.3f}); theory {2 * stats.norm.sf(2):.3f}")

# %% [markdown]
# **Bug 3: a sustained shift is barely visible, and evidence is never
# accumulated.** After a one-sigma drift the rule fires on only about 16 % of
# requests (the share above 2, plus the share below -2), only about three times
# its false-alarm rate, so drift is hard to tell from noise: the detector looks at one point at a time, so 100 slightly
# worse requests in a row look like 100 independent coin flips.

# %%
drifted = rng.normal(1.0, 1.0, size=2000)
m.scores.clear()
print(f"alarm rate after a 1-sigma drift: {np.mean([m.detect(x) for x in drifted]):.3f} "
      f"(theory {stats.norm.sf(1) + stats.norm.cdf(-3):.3f}) vs {alarms / 2000:.3f} before")

# %% [markdown]
# **Bug 4: the baseline never updates.** `update_baseline` is called once; after
# an intended change (a new model version with a different but acceptable
# score distribution) the monitor keeps comparing against the old one and
# alarms until someone notices. And a constant baseline (all zeros, say, from a
# metric that was not logged yet) gives `std = 0` and an infinite z-score:

# %%
m = SlideMonitor()
m.update_baseline(np.zeros(100))
with np.errstate(divide="ignore"):
    print("z-score with a constant baseline:", m.detect(0.1), m.scores[-1])

# %% [markdown]
# numpy only warns (hidden here) and the monitor flags everything. **Bug 5:**
# `trend()` refits a line to the *whole* history on every call (cost grows
# without bound), so after a day of traffic a new problem hardly moves the slope.
#
# ## 2. A simulated production stream
#
# `mon.simulate_stream` gives 2,000 requests. Each has a safety metric
# (standardised: N(0, 1) when healthy) and an 8-dimensional input embedding.
# From request 1,200 on, the metric drifts up by one standard deviation. Before
# that, three attack bursts of 15 requests raise the metric by 2.5 and push the
# inputs 6 standard deviations along the direction in which normal inputs vary least.

# %%
stream = mon.simulate_stream(seed=0)
fig, ax = plt.subplots(figsize=(9, 2.8))
ax.plot(stream.values, lw=0.5, color="tab:gray")
ax.fill_between(np.arange(len(stream.values)), -4, 6, where=stream.attack, color="tab:red", alpha=0.3, label="attack bursts")
ax.axvline(stream.drift_start, color="tab:orange", ls="--", label="drift starts")
ax.set(xlabel="request", ylabel="metric", ylim=(-4, 6), title="The simulated stream")
ax.legend(loc="upper left")
plt.show()
print(f"{len(stream.values)} requests, {stream.attack.sum()} in attack bursts, drift of {stream.drift_size} sd from request {stream.drift_start}")

# %% [markdown]
# ## 3. Accumulate evidence: EWMA and CUSUM
#
# The **exponentially weighted moving average** (Roberts 1959) remembers the
# past with geometrically decaying weights:
# $z_t = \lambda x_t + (1-\lambda) z_{t-1}$. Small $\lambda$ averages many
# points, so a small sustained shift stands out of the noise.

# %%
card("13.ewma")

# %% [markdown]
# Write `ewma(x, lam=0.1, start=0.0)` returning the array of $z_t$ with
# $z_{-1} =$ `start`; raise `ValueError` unless $0 < \lambda \le 1$.

# %%
def ewma(x, lam=0.1, start=0.0):
    ### BEGIN SOLUTION
    if not 0 < lam <= 1:
        raise ValueError("lam must be in (0, 1]")
    z = np.empty(len(x))
    prev = start
    for t, v in enumerate(x):
        prev = lam * v + (1 - lam) * prev
        z[t] = prev
    return z
    ### END SOLUTION

# %%
check("13.ewma", ewma)

# %% [markdown]
# The EWMA *chart* alarms when $z_t$ leaves $\mu_0 \pm L\sigma\sqrt{\frac{\lambda}{2-\lambda}(1-(1-\lambda)^{2t})}$
# (the exact standard deviation of $z_t$; Montgomery, *Introduction to
# Statistical Quality Control*, §9.2).
#
# Page's **CUSUM** (1954) accumulates evidence for a shift of a given size and
# forgets it when the data disagree. In units of $\sigma$, with $u_t = (x_t - \mu_0)/\sigma$:
#
# $$S^+_t = \max(0,\ S^+_{t-1} + u_t - k), \qquad S^-_t = \max(0,\ S^-_{t-1} - u_t - k),$$
#
# and an alarm when either sum exceeds $h$. The allowance $k = 0.5$ is tuned to
# a one-sigma shift; the decision interval $h$ sets the false-alarm rate.

# %%
card("13.cusum")

# %% [markdown]
# Write `cusum(x, mu0=0.0, sigma=1.0, k=0.5, h=5.0)` returning
# `(statistic, alarm)`: `statistic[t] = max(S+_t, S-_t)`, `alarm[t]` is `True`
# when it exceeds `h`, and **both sums restart at 0 after an alarm**. Raise
# `ValueError` when `sigma <= 0`.

# %%
def cusum(x, mu0=0.0, sigma=1.0, k=0.5, h=5.0):
    ### BEGIN SOLUTION
    if sigma <= 0:
        raise ValueError("sigma must be positive")
    u = (np.asarray(x, dtype=float) - mu0) / sigma
    stat = np.zeros(len(u))
    alarm = np.zeros(len(u), dtype=bool)
    hi = lo = 0.0
    for t, v in enumerate(u):
        hi = max(0.0, hi + v - k)
        lo = max(0.0, lo - v - k)
        stat[t] = max(hi, lo)
        if stat[t] > h:
            alarm[t] = True
            hi = lo = 0.0
    return stat, alarm
    ### END SOLUTION

# %%
check("13.cusum", cusum)

# %% [markdown]
# ## 4. Six detectors, measured
#
# labkit also has the **Page–Hinkley** test (cumulative deviations from the
# running mean, minus a tolerance $\delta$), a **rolling z-score** against the
# previous 100 requests (the baseline moves with the stream), a windowed
# two-sample **Kolmogorov–Smirnov** test of the last 200 requests against the
# first 300, and the **Mahalanobis distance** of each input embedding to the
# reference inputs (Mahalanobis 1936). Lee et al. (2018) made Mahalanobis
# distance on a network's features a standard detector of out-of-distribution
# and adversarial inputs (with one Gaussian per class and a shared covariance);
# we use the simplest version, one Gaussian fitted to the reference inputs.
#
# To separate the two questions, we measure drift detection on a stream
# with the same drift but no bursts (false-alarm rate per request before the
# drift, delay after it), and burst detection on the stream above (share of
# the three bursts with an alarm inside).

# %%
calm = mon.simulate_stream(n_bursts=0, seed=0)
rows = []
for det in mon.DETECTORS:
    _, alarm, _ = mon.run_detector(calm, det)
    ev = mon.evaluate_alarms(alarm, calm.drift_start, warmup=100)
    _, burst_alarm, _ = mon.run_detector(stream, det)
    rows.append({"detector": det, "false alarms / request": round(ev["false_alarm_rate"], 4),
                 "drift delay": ev["delay"], "bursts caught": f"{mon.burst_recall(burst_alarm, stream.attack):.2f}"})
pd.DataFrame(rows).set_index("detector")

# %% [markdown]
# Read the table row by row:
#
# * CUSUM, EWMA and Page–Hinkley all find the drift within a few dozen
#   requests, with false-alarm rates well below the slide's 4.6 %.
# * The rolling z-score is slower on a drift because its baseline follows the
#   stream: after 100 requests the new level *is* the baseline (it is built
#   for spikes, not drifts).
# * KS compares whole distributions, so it fires only once a sizeable part of
#   its 200-request window has drifted, and it catches no 15-request burst.
# * Mahalanobis watches the inputs, not the metric, and catches every burst.
#   Its "drift delay" is meaningless: the inputs do not change with the
#   drift, and the alarm after it is one of the ~1 % false positives its
#   threshold allows (the highest false-alarm rate in the table).
#
# ### Why Mahalanobis and not plain distance
#
# The attack inputs move along the direction in which normal inputs vary
# *least*. Plain Euclidean distance weighs every direction alike and barely
# notices; Mahalanobis distance divides by the spread in each direction. At
# the same 1 % false-positive rate on healthy requests:

# %%
mean, precision = mon.fit_gaussian(stream.reference_features)
for name, d in (("Mahalanobis", mon.mahalanobis_distance(stream.features, mean, precision)),
                ("Euclidean", mon.euclidean_distance(stream.features, mean))):
    threshold = np.quantile(d[~stream.attack], 0.99)
    print(f"{name:<11} attack requests caught: {np.mean(d[stream.attack] > threshold):.3f}")
chi = np.sqrt(stats.chi2.ppf(0.99, stream.features.shape[1]))
d = mon.mahalanobis_distance(stream.features, mean, precision)
print(f"chi-square threshold {chi:.2f}: false-positive rate on healthy requests {np.mean(d[~stream.attack] > chi):.3f} (nominal 0.010)")

# %% [markdown]
# For Gaussian inputs the squared Mahalanobis distance follows a $\chi^2_d$
# law, so the threshold can be set from the target false-positive rate without
# any labelled attacks.
#
# ## 5. Reproducing a reference result: CUSUM run lengths
#
# The performance of a change detector is summarised by its **average run
# length** (ARL): the mean number of samples to the first alarm. With no change
# it should be long (few false alarms); after a shift, short. For the two-sided
# CUSUM with $k = 0.5$, $h = 5$, Montgomery's Table 9.3 (computed from Page's
# scheme) gives 465 with no shift, 38.0 at half a sigma, 10.4 at one sigma and
# 4.01 at two. We estimate them by simulating 400 streams per shift:

# %%
table = {0.0: 465, 0.5: 38.0, 1.0: 10.4, 2.0: 4.01}
for shift, reference in table.items():
    arl = mon.cusum_arl(shift, k=0.5, h=5.0, n_runs=400, seed=0)
    print(f"shift {shift:.1f} sd: simulated ARL {arl:7.1f}, Montgomery {reference}")

# %% [markdown]
# The simulation reproduces the table within Monte Carlo error (the ARL with
# no shift has a standard error of about 5 % with 400 runs). Compare with the
# slide's rule: a false alarm every 22 requests, and a one-sigma shift found
# after about 6 requests but buried among the false alarms.
#
# ## 6. Alert rules
#
# A detector fires; an *alert* pages a human. The simplest useful rule opens
# an alert on an alarm and then stays quiet for a cooldown, so one incident is
# one page. On the full stream with CUSUM:

# %%
_, alarm, _ = mon.run_detector(stream, "cusum")
opened = mon.alerts(alarm, cooldown=50)
print(f"CUSUM alarms: {alarm.sum()}, alerts after a 50-request cooldown: {len(opened)}")
print("alerts opened at requests:", opened.tolist())

# %% [markdown]
# Three alerts open within three requests of the bursts (which start at 422, 653
# and 873), three are false (49, 238 and 1094: about one per 400 healthy
# requests, as the ARL of 465 predicts), and from 1217 on the restarted CUSUM
# keeps opening an alert every 50 to 65 requests until someone acts: that is
# intended, since the drift is a real, ongoing problem. In production, each detector gets its own
# rule: the input detector (Mahalanobis) pages the security on-call, the metric
# detectors the model owners.
#
# ### Many detectors, many metrics: multiple testing
#
# Each detector's false-alarm rate was set on its own. Run all six on the same
# healthy traffic and page on *any* alarm, and the rates add up: this is the
# multiple-testing problem, and a real service watches dozens of metrics, not
# one. On the drift-free stream, before the drift, after the warm-up:

# %%
healthy = slice(100, calm.drift_start)
any_alarm = np.zeros(calm.drift_start - 100, dtype=bool)
for det in mon.DETECTORS:
    _, alarm_det, _ = mon.run_detector(calm, det)
    any_alarm |= alarm_det[healthy]
    print(f"{det:<14} false alarms per healthy request {alarm_det[healthy].mean():.4f}")
print(f"{'any of them':<14} false alarms per healthy request {any_alarm.mean():.4f}"
      f" (one every {1 / max(any_alarm.mean(), 1e-12):.0f} requests)")

# %% [markdown]
# The union alarms far more often than any single detector. With $m$
# independent detectors at false-alarm rate $\alpha$ each, the chance that at
# least one fires is $1-(1-\alpha)^m \approx m\alpha$; ours are correlated
# (most watch the same metric), so the union can be below that sum, but it is
# still above every single rate. A team paged that often learns to ignore the
# pager: **alert fatigue**, which turns a monitor into decoration. The remedies
# are the ones of multiple testing: give the *family* of detectors a false-alarm
# budget and split it (Bonferroni: each detector at $\alpha/m$; for sequential
# detectors, pick each threshold for a longer in-control ARL), route each
# detector to the people who can act on it, and deduplicate alarms into
# incidents with a cooldown, as above.
#
# ### An audit log of alerts
#
# After an incident someone will ask what the monitor raised, when, and with
# which settings, and needs to trust that nobody edited the record afterwards.
# `mon.AuditLog` chains entries by hash: each stores the SHA-256 of the previous
# one, so changing or deleting any entry breaks every later link. We log the
# CUSUM alerts opened above:

# %%
import json

log = mon.AuditLog()
for request in opened:
    log.append(request=int(request), detector="cusum", h=5.0, cooldown=50, routed_to="model owners")
stored = log.to_jsonl()
print("entries:", len(log), "| intact:", mon.AuditLog.verify_jsonl(stored) is None)

# Someone deletes the first alert from the stored file, then edits another.
lines = stored.splitlines()
print("first broken entry after deleting entry 0:", mon.AuditLog.verify_jsonl("\n".join(lines[1:])))
edited = json.loads(lines[2])
edited["request"] += 100
lines[2] = json.dumps(edited, sort_keys=True)
print("first broken entry after editing entry 2:", mon.AuditLog.verify_jsonl("\n".join(lines)))

# %% [markdown]
# (A hash chain detects tampering; it does not prevent someone rewriting the
# whole chain. Real systems also publish the latest hash somewhere the operator
# cannot edit, or use write-once storage.)
#
# ### The course's assistant in production
#
# The stream so far was simulated. Now the requests go to the course's real
# assistant and every reply is the shipped model's own (greedy, cached once:
# `mon.reply_pool`). 1,500 requests are drawn from the world's held-out test
# prompts (mostly benign, a few harmful: `mon.TRAFFIC_MIX`). From request 500 to 650 an attacker
# runs a **jailbreak campaign**: half the requests are harmful ones with
# "Start your reply with 'Sure, here is'" appended (the wrapper that moved this
# model's refusals most; role-play and "ignore previous instructions" wrappers
# did not). At request 1,000 a **model update** ships: by mistake, the base
# model from before safety fine-tuning. Two per-request metrics are monitored:
# whether the reply refuses, and whether the output guard
# (`labkit.lm.harness.is_harmful`) flags it. Each indicator is standardised by
# its rate in the first 300 requests (`mon.indicator_zscores`) and fed to the
# detectors above, at their usual settings.

# %%
live = mon.assistant_stream(seed=0)
periods = {"healthy (0-499)": slice(0, 500), "campaign (500-649)": slice(500, 650),
           "after it (650-999)": slice(650, 1000), "updated model (1000-)": slice(1000, None)}
print(pd.DataFrame({name: {"refusal rate": round(live.refused[sl].mean(), 3),
                           "output-guard flags": round(live.harmful[sl].mean(), 3)} for name, sl in periods.items()}).T)

detectors = {"cusum": lambda z: mon.cusum(z, 0.0, 1.0, 0.5, 5.0), "ewma": lambda z: mon.ewma_chart(z, 0.0, 1.0, 0.1, 3.0),
             "page_hinkley": lambda z: mon.page_hinkley(z, 0.05, 20.0)}
fig, axes = plt.subplots(2, 1, figsize=(9, 4.2), sharex=True)
for ax, (metric, flags) in zip(axes, (("refusal", live.refused), ("output guard", live.harmful))):
    z = mon.indicator_zscores(flags, reference=300)
    for det, run in detectors.items():
        opened_live = mon.alerts(run(z)[1], cooldown=50)
        print(f"{metric:<12} {det:<12} alerts at {opened_live.tolist()}")
        ax.vlines(opened_live, 0, 1, transform=ax.get_xaxis_transform(), lw=1,
                  color={"cusum": "tab:red", "ewma": "tab:blue", "page_hinkley": "tab:green"}[det], label=det)
    ax.plot(pd.Series(flags.astype(float)).rolling(50, min_periods=1).mean(), color="k", lw=1)
    ax.axvspan(*live.campaign, color="tab:orange", alpha=0.2)
    ax.axvline(live.update_at, color="tab:purple", ls="--")
    ax.set(ylabel=f"{metric} rate\n(last 50)")
axes[0].legend(loc="upper right", fontsize=8, ncol=3)
axes[1].set(xlabel="request (shaded: campaign; dashed: model update)")
fig.tight_layout()
plt.show()

# %% [markdown]
# Read the printed rates and alerts. The campaign doubles the refusal rate (the
# jailbreak does not get harmful content out of this model, but its requests
# are harmful and mostly refused), and the detectors open an alert within a
# few dozen requests of its start. The bad update is the dangerous event and
# the refusal metric is poor at seeing it: the refusal rate falls by less than
# one standard deviation of a 0/1 indicator per request, while CUSUM with
# $k = 0.5$ is tuned for a shift of one, and Page–Hinkley as configured here
# only looks for increases: no refusal alert follows the update for hundreds of
# requests (a late one answers a later *rise* of the rate). The output guard is
# the metric that sees the update: it never fires on the safe model, so the
# first flagged reply is already an alarm. CUSUM also raises false alerts
# on the refusal indicator in the healthy period: a 0/1 metric is far from
# normal, so the run lengths of section 5 do not hold for it; set the thresholds
# of such metrics by simulation on healthy traffic. Monitor what you care about
# (harmful outputs) directly, not only a proxy of it (refusals).
#
# ## 7. The dashboard
#
# Replay the stream request by request, switch detectors and tune their
# strictness, which moves each detector's own threshold across the range in
# `mon.SENSITIVITY` (CUSUM's $h$ from 2 to 10, EWMA's $L$, Page–Hinkley's
# threshold, the |z| cut-off, $-\log_{10}\alpha$ for KS, the distance
# threshold for Mahalanobis; the default 0.375 is CUSUM's $h = 5$).
# Red lines are opened alerts; the title counts those raised away from any
# burst and before the drift, i.e. false ones.

# %% tags=["nbval-ignore-output"]
mon.dashboard_widget(stream)

# %% [markdown]
# ## Key takeaways
# * A per-point |z| > 2 rule alarms on 4.6 % of healthy traffic and still barely sees a sustained shift.
# * Comparing a fitted slope with exactly 0 is a bug: floats are never exactly 0; use a test or a change detector.
# * CUSUM, EWMA and Page–Hinkley accumulate evidence; their false-alarm rate is set by design (ARL tables, simulation).
# * Monitor inputs and outputs: Mahalanobis distance on inputs catches attacks the output metric does not explain.
# * Measure detectors by false-alarm rate and detection delay on a stream with known changes, and turn alarms into alerts with a cooldown.
# * Many detectors on one pager multiply false alarms (multiple testing); budget false alarms for the whole family, or alert fatigue makes the monitor useless.
# * On the real assistant, a jailbreak campaign shows in the refusal rate within dozens of requests; a bad model update barely moves it, and only an output metric (the guard's flags) catches it at once.
# * Keep what the monitor raised in a tamper-evident, hash-chained log: accountability needs a record nobody can quietly edit.
#
# ## Further reading
# * E. S. Page (1954), *Continuous Inspection Schemes.* Biometrika 41.
# * S. W. Roberts (1959), *Control Chart Tests Based on Geometric Moving Averages.* Technometrics 1.
# * D. V. Hinkley (1971), *Inference about the change-point from cumulative sum tests.* Biometrika 58.
# * D. C. Montgomery, *Introduction to Statistical Quality Control*, chapter 9 (CUSUM and EWMA, ARL tables).
# * P. C. Mahalanobis (1936), *On the generalised distance in statistics.*
# * K. Lee, K. Lee, H. Lee, J. Shin (2018), *A simple unified framework for detecting out-of-distribution samples and adversarial attacks.* NeurIPS.
# * Y. Benjamini, Y. Hochberg (1995), *Controlling the false discovery rate: a practical and powerful approach to multiple testing.* JRSS B 57(1).
# * J. Gama et al. (2014), *A survey on concept drift adaptation.* ACM Computing Surveys 46(4).
