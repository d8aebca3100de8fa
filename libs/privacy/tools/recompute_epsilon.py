#!/usr/bin/env python3
"""Independent re-computation of a fedlora privacy ledger's epsilon, for auditors.

A second implementation, in another language and in 50-digit arithmetic (mpmath), of the same
published formulas the TypeScript accountant uses, so that a bug in one is caught by the other:

- Poisson-subsampled Gaussian: Mironov, Talwar, Zhang 2019, Section 3.3 (integer alpha: binomial
  expansion; fractional alpha: the two erfc series with z0 = sigma^2 log(1/q - 1) + 1/2).
- Gaussian: alpha / (2 z^2) (Mironov 2017, Proposition 7).
- Skellam: Agarwal, Kairouz, Liu 2021, Theorem 3.5 (ceil(alpha) for fractional orders).
- Discrete Gaussian (distributed): Kairouz, Liu, Steinke 2021, Theorem 1 / Proposition 14.
- Poisson subsampling of those two: Zhu & Wang 2019, Theorem 6.
- RDP -> (epsilon, delta): Balle et al. 2020, Theorem 21 ("improved") or Mironov 2017,
  Proposition 3 ("classic").

It does not check signatures or the hash chain (`fedlora audit` does); it only re-accounts.

    /usr/bin/python3 recompute_epsilon.py LEDGER.jsonl   ->   {"entries": N, "epsilon": x, "perEntry": [...]}
"""
import json
import math
import sys

import mpmath

mpmath.mp.dps = 50


def log_a_int(q, sigma, alpha):
    total = mpmath.mpf(0)
    for i in range(alpha + 1):
        total += mpmath.binomial(alpha, i) * mpmath.power(q, i) * mpmath.power(1 - q, alpha - i) * mpmath.exp(mpmath.mpf(i * i - i) / (2 * sigma**2))
    return mpmath.log(total)


def log_a_frac(q, sigma, alpha):
    q, sigma, alpha = mpmath.mpf(q), mpmath.mpf(sigma), mpmath.mpf(alpha)
    a0 = mpmath.mpf(0)
    a1 = mpmath.mpf(0)
    z0 = sigma**2 * mpmath.log(1 / q - 1) + mpmath.mpf(1) / 2
    i = 0
    while True:
        coef = mpmath.binomial(alpha, i)
        j = alpha - i
        t0 = coef * mpmath.power(q, i) * mpmath.power(1 - q, j)
        t1 = coef * mpmath.power(q, j) * mpmath.power(1 - q, i)
        e0 = mpmath.erfc((i - z0) / (mpmath.sqrt(2) * sigma)) / 2
        e1 = mpmath.erfc((z0 - j) / (mpmath.sqrt(2) * sigma)) / 2
        s0 = t0 * mpmath.exp((i * i - i) / (2 * sigma**2)) * e0
        s1 = t1 * mpmath.exp((j * j - j) / (2 * sigma**2)) * e1
        a0 += s0
        a1 += s1
        i += 1
        if max(abs(s0), abs(s1)) < mpmath.exp(-30) and i > 2:
            break
    return mpmath.log(a0 + a1)


def rdp_sampled_gaussian(q, z, alpha):
    if q == 0:
        return 0.0
    if z == 0 or math.isinf(alpha):
        return math.inf
    if q == 1:
        return alpha / (2 * z * z)
    la = log_a_int(q, z, int(alpha)) if float(alpha).is_integer() else log_a_frac(q, z, alpha)
    return float(la / (alpha - 1))


def rdp_skellam(var, l1, l2, alpha):
    a = max(2, math.ceil(alpha))
    return a * l2 * l2 / (2 * var) + min(((2 * a - 1) * l2 * l2 + 6 * l1) / (4 * var * var), 3 * l1 / (2 * var))


def rdp_discrete_gaussian(e, alpha):
    sigma, l2 = e["sigma"], e["l2Sensitivity"]
    n, d = e.get("parties", 1), e.get("dimension", 1)
    l1 = e.get("l1Sensitivity", l2 * math.sqrt(d))
    tau = 10 * sum(math.exp(-2 * math.pi**2 * sigma**2 * (k / (k + 1))) for k in range(1, n))
    s = math.sqrt(n) * sigma
    a2, a1 = l2 / s, l1 / s
    if tau == 0:
        return alpha / 2 * a2 * a2
    return min(alpha / 2 * a2 * a2 + tau * d, alpha / 2 * (a2 * a2 + 2 * a1 * tau + tau * tau * d), alpha / 2 * (a2 + math.sqrt(d) * tau) ** 2)


def subsampled(q, eps, alpha):
    if q == 1:
        return eps(alpha)
    a = max(2, math.ceil(alpha))
    q = mpmath.mpf(q)
    total = (1 - q) ** (a - 1) * (a * q - q + 1) + mpmath.binomial(a, 2) * q**2 * (1 - q) ** (a - 2) * mpmath.exp(eps(2))
    for l in range(3, a + 1):
        total += 3 * mpmath.binomial(a, l) * (1 - q) ** (a - l) * q**l * mpmath.exp((l - 1) * eps(l))
    return min(float(mpmath.log(total) / (a - 1)), eps(alpha))


def event_rdp(e, alpha):
    m = e["mechanism"]
    if m == "sampled_gaussian":
        return 0.0 if e["steps"] == 0 else e["steps"] * rdp_sampled_gaussian(e["samplingRate"], e["noiseMultiplier"], alpha)
    if m == "gaussian":
        return 0.0 if e["steps"] == 0 else e["steps"] * (math.inf if e["noiseMultiplier"] == 0 else alpha / (2 * e["noiseMultiplier"] ** 2))
    if m == "skellam":
        return e["steps"] * subsampled(e.get("samplingRate", 1), lambda a: rdp_skellam(e["variance"], e["l1Sensitivity"], e["l2Sensitivity"], a), alpha)
    if m == "discrete_gaussian":
        return e["steps"] * subsampled(e.get("samplingRate", 1), lambda a: rdp_discrete_gaussian(e, a), alpha)
    if m == "rdp":
        # The value at the smallest listed order >= alpha (RDP is non-decreasing in the order).
        above = sorted((o, v) for o, v in zip(e["orders"], e["values"]) if o >= alpha)
        return above[0][1] if above else math.inf
    raise ValueError("unknown mechanism " + str(m))


def epsilon(orders, rdp, delta, conversion):
    best = math.inf
    for a, r in zip(orders, rdp):
        if math.isinf(r):
            continue
        if conversion == "classic":
            e = r - math.log(delta) / (a - 1)
        elif delta * delta + math.expm1(-r) > 0:
            e = 0.0
        elif a > 1.01:
            e = r + math.log1p(-1 / a) - math.log(delta * a) / (a - 1)
        else:
            e = math.inf
        best = min(best, e)
    return max(0.0, best)


def main(path):
    entries = [json.loads(line) for line in open(path, encoding="utf8") if line.strip()]
    if not entries:
        print(json.dumps({"entries": 0, "epsilon": 0, "perEntry": []}))
        return
    orders, delta, conversion = entries[0]["orders"], entries[0]["delta"], entries[0]["conversion"]
    cumulative = [0.0] * len(orders)
    per_entry = []
    for e in entries:
        for ev in e.get("events", []):
            cumulative = [c + event_rdp(ev, a) for c, a in zip(cumulative, orders)]
        per_entry.append(epsilon(orders, cumulative, delta, conversion))
    print(json.dumps({"entries": len(entries), "epsilon": per_entry[-1], "perEntry": per_entry}))


if __name__ == "__main__":
    main(sys.argv[1])
