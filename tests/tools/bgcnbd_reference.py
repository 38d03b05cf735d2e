#!/usr/bin/env python3
"""Reference values of tests/unit/test_bgcnbd.c: BG/CNBD-k log-likelihood, P(alive) and
P(none in h) by direct numerical integration (mpmath, 30 digits) of the individual-level
likelihood over lambda ~ Gamma(r, alpha) and p ~ Beta(a, b), no closed form used.
Usage: python3 tests/tools/bgcnbd_reference.py (pip install mpmath; about a minute)."""
import mpmath as mp
mp.mp.dps = 30
def indiv(lam, p, k, x, tx, T, h=0):
    # alive-and-silent through T+h, and dropped-after-t_x parts, without the gaps' constant
    s = T + h - tx
    surv = sum(mp.e**(-lam*s) * (lam*s)**j / mp.factorial(j) for j in range(k))
    dens = lam**(k*x) * mp.e**(-lam*tx)  # prod of Erlang densities without C
    alive = (1-p)**x * dens * surv
    drop = (p*(1-p)**(x-1) * dens) if x > 0 else 0
    return alive, drop
def integ(k, r, al, a, b, x, tx, T, h=0):
    g = lambda lam: al**r * lam**(r-1) * mp.e**(-al*lam) / mp.gamma(r)
    be = lambda p: p**(a-1) * (1-p)**(b-1) / mp.beta(a, b)
    A = mp.quad(lambda lam, p: g(lam)*be(p)*indiv(lam, p, k, x, tx, T, h)[0], [0, mp.inf], [0, 1])
    B = mp.quad(lambda lam, p: g(lam)*be(p)*indiv(lam, p, k, x, tx, T, h)[1], [0, mp.inf], [0, 1])
    return A, B
for (k, r, al, a, b, x, tx, T, h) in [(2, 1.3, 9.5, 0.8, 3.0, 4, 30.0, 50.0, 90.0), (3, 0.7, 20.0, 0.5, 2.0, 2, 10.0, 60.0, 90.0), (1, 1.3, 9.5, 0.8, 3.0, 4, 30.0, 50.0, 90.0)]:
    A, B = integ(k, r, al, a, b, x, tx, T)
    AH, _ = integ(k, r, al, a, b, x, tx, T, h)
    print(k, r, al, a, b, x, tx, T, h, 'LL', mp.nstr(mp.log(A+B), 15), 'P(alive)', mp.nstr(A/(A+B), 15), 'P(none)', mp.nstr((AH+B)/(A+B), 15))
