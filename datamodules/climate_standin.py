"""Offline stand-in for the CAM5 climate segmentation data: ClimateNet-style netCDF maps with weather in them.

Written by :func:`write_stand_in` (parameters :class:`StandInClimate`, the config's
``data.stand_in_maps``) and read back by the same netCDF reader and resampler as real data
(:mod:`datamodules.climate`). One map (:func:`stand_in_map`) is built as follows.

**Background weather.** Every variable is its published UGSCNN mean plus its published std times a
zonal climatology (warm, moist tropics; mid-latitude jets) plus weather: random band-limited fields
synthesised from spherical harmonics (degree ≤ :data:`LMAX`, Gaussian ``a_lm`` with an angular
power spectrum ``C_l ∝ l^-p · exp(-(l/l_c)²)``). Four latent fields per map carry the weather, and
the variables are derived from them so that they co-vary as on a real map:

* a streamfunction ψ (``p`` = 3, ``l_c`` = 14: synoptic scale, wavelengths of 2,000–6,000 km) gives
  the geostrophic winds ``U850 = −∂ψ/∂y``, ``V850 = ∂ψ/∂x`` (UBOT / VBOT 0.7 × these, turned
  towards low pressure), and sea-level pressure ``PSL ∝ ψ · sin φ`` (lows are cyclonic in both
  hemispheres: extratropical cyclones with closed circulations, unlabelled), Z1000 and Z200;
* a moisture anomaly (``p`` = 1.5, ``l_c`` = 25: rougher) for TMQ, QREFHT and, through a
  threshold, PRECT (patches of rain);
* a temperature anomaly (``p`` = 3, ``l_c`` = 10) for T200, T500, TS and TREFHT;
* a fixed orography (seed only, the same on every map) for PS = PSL − orography and ZBOT.

**Atmospheric rivers** (``ar_per_map`` ± 1 per map): curved filaments grown as a random walk of
the heading on the sphere from 10–25° latitude, poleward and bending east, of lognormal length
(median ``ar_length_deg``), with a half-width that varies smoothly along the filament (median
``ar_halfwidth_deg``, 0.5–1.6 ×) and a moisture load that tapers at both ends; 40 % branch once.
They add TMQ (20–34 kg m⁻² at the core), QREFHT, PRECT, a low-level jet along the filament and a
warm anomaly. A third of them start at a tropical cyclone (overlapping events).

**Tropical cyclones** (Poisson, mean ``tc_per_map``, 6–30° from the equator): Holland (1980)
pressure profile with a lognormal radius of maximum wind and a lognormal maximum wind (median
22 m s⁻¹; about a third are tropical depressions below gale force), the pressure drop from the
Atkinson & Holliday (1977) wind–pressure relation, cyclonic winds (counter-clockwise north,
clockwise south), moist core and heavy rain, and a warm core (T500, T200) confined to the inner half
of the gale radius.

**Look-alikes** the labelling rules reject, each locally like an event: round moist, windy plumes
with a river's moisture load and jet speed (``decoys_per_map``), river-like jets too short for the
AR rule (``short_per_map``), deep cold-core extratropical lows (``etc_per_map``), and cold-core
gale-force lows at TC latitudes with a TC's size, intensity, moisture and rain (``lows_per_map``):
their wind ring is a TC's wind ring, and only the temperature of the core, a few hundred km
away, tells them apart. A model that classifies each site from its own values cannot separate
these from events; one that sees the surroundings (the extent and shape of a moist region, the
core of a cyclone) can.

**Labels follow the fields**, by threshold rules of the kind used to label CAM5 (TECA):

* TC: a cyclone whose maximum near-surface wind on the map reaches gale force (17 m s⁻¹), with a warm
  core (T500 anomaly ≥ 1 K); labelled where the near-surface wind speed of the *whole* field
  (background included) is at least the gale threshold, within 2 gale radii of its centre, eye
  filled. Tropical depressions and extratropical lows stay background.
* AR: connected regions where column water exceeds the zonal climatology by ``ar_tmq_anomaly``
  kg m⁻² *and* the integrated vapour transport proxy TMQ · |V850| exceeds 250 kg m⁻¹ s⁻¹ (the
  usual IVT threshold), kept when the region is long (great-circle extent ≥ 2,000 km), narrow
  (area / extent² ≤ 0.35) and reaches 25° latitude; the criteria are applied to the fields, so a
  moist band of the background that meets them is an AR and a drawn filament that misses them
  (too dry, too short, too slow) is not.
* Label noise: the thresholds vary by ±6 % between maps, as between labellers, and every pixel on a
  label's border flips (in or out) with probability ``label_noise``. TC wins where both hold.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from datamodules._common import atomic_path
from datamodules.climate_files import LABEL_VAR, MEAN, STD, VARIABLES


#: highest spherical-harmonic degree of the background weather (the 96 × 192 grid resolves ~48)
LMAX = 40
_R_EARTH_KM = 6371.0
_KM_PER_DEG = np.pi * _R_EARTH_KM / 180
#: gale force, m/s: the lower bound of a tropical storm (WMO; TECA's TC wind criterion)
GALE = 17.0
#: integrated vapour transport threshold of AR detection, kg m-1 s-1 (Rutz et al. 2014, JCLI; TECA BARD)
IVT_THRESHOLD = 250.0


@dataclass(frozen=True)
class StandInClimate:
    """How the offline stand-in is made (config ``data.stand_in_maps``).

    ``files`` netCDF files of one time step on an ``nlat × nlon`` grid; per map a Poisson number
    of tropical cyclones (mean ``tc_per_map``; ``tc_radius_deg`` the median radius of gale-force
    winds, i.e. of the TC label) and ``ar_per_map`` ± 1 atmospheric rivers (median length
    ``ar_length_deg``, median half-width ``ar_halfwidth_deg``), Poisson numbers of look-alikes the
    labelling rules reject: round moist plumes (``decoys_per_map``), river-like jets too short for the AR
    rule (``short_per_map``), cold-core extratropical lows (``etc_per_map``) and cold-core gale-force
    lows at TC latitudes whose wind ring matches a TC's (``lows_per_map``); ``weather`` scales the background
    weather (0: the zonal climatology only), ``ar_tmq_anomaly`` is the AR labelling rule's column
    water anomaly (kg m⁻²), ``label_noise`` the probability that a label's border pixel flips;
    ``seed``.
    """

    files: int = 40
    nlat: int = 96
    nlon: int = 192
    tc_per_map: float = 1.5
    tc_radius_deg: float = 3.0
    ar_per_map: int = 3
    ar_length_deg: float = 45.0
    ar_halfwidth_deg: float = 3.0
    decoys_per_map: float = 2.0
    etc_per_map: float = 3.0
    short_per_map: float = 2.0
    lows_per_map: float = 0.0
    weather: float = 1.0
    ar_tmq_anomaly: float = 10.0
    label_noise: float = 0.1
    seed: int = 0


#: units and long names written to the stand-in (CAM5 / ClimateNet conventions)
_ATTRS = {"TMQ": ("kg m-2", "Total (vertically integrated) precipitable water"),
          "U850": ("m/s", "Zonal wind at 850 mbar"), "V850": ("m/s", "Meridional wind at 850 mbar"),
          "UBOT": ("m/s", "Lowest model level zonal wind"), "VBOT": ("m/s", "Lowest model level meridional wind"),
          "QREFHT": ("kg/kg", "Reference height humidity"), "PS": ("Pa", "Surface pressure"),
          "PSL": ("Pa", "Sea level pressure"), "T200": ("K", "Temperature at 200 mbar"),
          "T500": ("K", "Temperature at 500 mbar"), "PRECT": ("m/s", "Total precipitation rate"),
          "TS": ("K", "Surface temperature"), "TREFHT": ("K", "Reference height temperature"),
          "Z1000": ("m", "Geopotential Z at 1000 mbar"), "Z200": ("m", "Geopotential Z at 200 mbar"),
          "ZBOT": ("m", "Lowest model level height")}
#: zonal climatology per variable, in units of its std: coefficient of (3 cos² φ − 2)
#: (warm / moist tropics) and of the mid-latitude jet exp(−((|φ|−45)/12)²)
_PROFILE = {"TMQ": (0.9, 0), "U850": (0, 1.0), "V850": (0, 0), "UBOT": (0, .7), "VBOT": (0, 0),
            "QREFHT": (0.9, 0), "PS": (.2, 0), "PSL": (.3, 0), "T200": (.6, 0), "T500": (.9, 0),
            "PRECT": (.1, 0), "TS": (.9, 0), "TREFHT": (.9, 0), "Z1000": (.2, 0), "Z200": (.9, 0),
            "ZBOT": (.2, 0)}


def _grid(m: StandInClimate) -> tuple[np.ndarray, np.ndarray]:
    lat = -90 + 180 * (np.arange(m.nlat) + 0.5) / m.nlat
    lon = 360 * np.arange(m.nlon) / m.nlon
    return lat, lon


@functools.lru_cache(maxsize=4)
def _legendre(nlat: int, lmax: int) -> np.ndarray:
    """Orthonormal associated Legendre functions ``P̄_lm(sin φ)`` at the grid's latitudes,
    ``(nlat, lmax + 1, lmax + 1)`` indexed ``[i, l, m]`` (zero for m > l), normalised so that
    ``Y_lm = P̄_lm e^{imλ}`` has unit norm on the sphere (standard three-term recursion)."""
    lat = -90 + 180 * (np.arange(nlat) + 0.5) / nlat
    x, s = np.sin(np.radians(lat)), np.cos(np.radians(lat))
    P = np.zeros((nlat, lmax + 1, lmax + 1))
    pmm = np.full(nlat, np.sqrt(1 / (4 * np.pi)))
    for m in range(lmax + 1):
        if m > 0:
            pmm = pmm * s * np.sqrt((2 * m + 1) / (2 * m))
        P[:, m, m] = pmm
        if m < lmax:
            P[:, m + 1, m] = x * np.sqrt(2 * m + 3) * pmm
        for l in range(m + 2, lmax + 1):
            a = np.sqrt((4 * l * l - 1) / (l * l - m * m))
            b = np.sqrt(((l - 1) ** 2 - m * m) / (4 * (l - 1) ** 2 - 1))
            P[:, l, m] = a * (x * P[:, l - 1, m] - b * P[:, l - 2, m])
    return P


def random_fields(rng: np.random.Generator, nlat: int, nlon: int, slopes: list[tuple[float, float]],
                  lmax: int = LMAX) -> np.ndarray:
    """Isotropic Gaussian random fields on the grid, one per ``(p, l_c)``: spherical-harmonic
    synthesis with ``C_l ∝ l^-p exp(-(l/l_c)²)`` for ``1 ≤ l ≤ lmax`` (no monopole), scaled to unit
    expected variance; the degree is capped at what the grid resolves (``nlon / 2 − 1``).
    Returns ``(len(slopes), nlat, nlon)``."""
    lmax = min(int(lmax), nlon // 2 - 1)
    P = _legendre(nlat, lmax)
    ell = np.arange(lmax + 1)
    out = np.empty((len(slopes), nlat, nlon))
    mask = np.tril(np.ones((lmax + 1, lmax + 1), bool))  # m <= l
    for k, (p, lc) in enumerate(slopes):
        cl = np.zeros(lmax + 1)
        cl[1:] = ell[1:].astype(float) ** -p * np.exp(-(ell[1:] / lc) ** 2)
        cl /= ((2 * ell + 1) * cl).sum() / (4 * np.pi)  # unit variance
        a = (rng.standard_normal((lmax + 1, lmax + 1)) + 1j * rng.standard_normal((lmax + 1, lmax + 1))) \
            * np.sqrt(cl / 2)[:, None]
        a[:, 0] = a[:, 0].real * np.sqrt(2)
        a = a * mask
        G = np.einsum("ilm,lm->im", P, a)  # (nlat, m)
        spec = np.zeros((nlat, nlon // 2 + 1), complex)
        spec[:, :lmax + 1] = G
        out[k] = np.fft.irfft(spec, n=nlon, axis=1) * nlon  # = G_0 + 2 Re sum_{m>0} G_m e^{im lon}
    return out


def _angular_dist(lat, lon, clat, clon) -> np.ndarray:
    """Great-circle distance in degrees between grid points and a centre."""
    p1, p2 = np.radians(lat), np.radians(clat)
    c = np.sin(p1) * np.sin(p2) + np.cos(p1) * np.cos(p2) * np.cos(np.radians(lon - clon))
    return np.degrees(np.arccos(np.clip(c, -1, 1)))


def _vectors(lon_deg, lat_deg) -> np.ndarray:
    la, lo = np.radians(lat_deg), np.radians(lon_deg)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], -1)


def _ddx_ddy(f: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """East and north derivatives per degree of arc (periodic in longitude)."""
    nlon = f.shape[1]
    dlon = 360 / nlon
    dx = (np.roll(f, -1, 1) - np.roll(f, 1, 1)) / (2 * dlon * np.maximum(np.cos(np.radians(lat)), 0.05)[:, None])
    dy = np.gradient(f, lat, axis=0)
    return dx, dy


def _smooth_series(rng, n: int, scale: float, corr: int) -> np.ndarray:
    """A smooth random series of length n (Gaussian-filtered white noise), std ~ ``scale``."""
    w = ndimage.gaussian_filter1d(rng.standard_normal(n + 4 * corr), corr, mode="wrap")[2 * corr:2 * corr + n]
    return scale * w / max(w.std(), 1e-9)


def _ar_path(rng, lat0: float, lon0: float, hemi: float, length: float, heading0: float,
             step: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A curved path on the sphere: the heading (radians from east, counter-clockwise; poleward
    mirrored in the south) does a smooth random walk and bends east as it goes poleward."""
    n = max(4, int(length / step))
    turn = _smooth_series(rng, n, 0.012, max(2, n // 8)) - 0.006  # radians per step; bending east
    lat, lon = np.empty(n), np.empty(n)
    la, lo, h = lat0, lon0, heading0
    for i in range(n):
        lat[i], lon[i] = la, lo
        h = h + turn[i]
        la = la + hemi * step * np.sin(h)
        lo = lo + step * np.cos(h) / max(np.cos(np.radians(la)), 0.2)
        if abs(la) > 75:
            lat, lon = lat[:i + 1], lon[:i + 1]
            break
    return lat, lon % 360


def _periodic_label(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components (8-neighbour) of a (lat, lon) mask, joined across the date line."""
    lab, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n == 0:
        return lab, 0
    parent = np.arange(n + 1)

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    left, right = lab[:, 0], lab[:, -1]
    for i in range(mask.shape[0]):
        for j in (i - 1, i, i + 1):
            if 0 <= j < mask.shape[0] and left[i] and right[j]:
                a, b = find(left[i]), find(right[j])
                if a != b:
                    parent[max(a, b)] = min(a, b)
    roots = np.array([find(k) for k in range(n + 1)])
    return roots[lab], n


def _border_noise(rng, mask: np.ndarray, p: float) -> np.ndarray:
    """Flip each pixel of the mask's inner and outer border with probability p."""
    if p <= 0 or not mask.any():
        return mask
    inner = mask & ~ndimage.binary_erosion(mask, np.ones((3, 3)), border_value=0)
    outer = ndimage.binary_dilation(mask, np.ones((3, 3))) & ~mask
    flip = rng.random(mask.shape) < p
    return (mask & ~(inner & flip)) | (outer & flip)


def _gale_radius(rng, m: StandInClimate) -> float:
    """A cyclone's gale radius (degrees): lognormal about ``m.tc_radius_deg``, within 0.4–3 × it."""
    return float(np.clip(m.tc_radius_deg * np.exp(0.35 * rng.standard_normal()), 0.4 * m.tc_radius_deg,
                         3 * m.tc_radius_deg))


def _tropical_cyclone(out: dict, LAT, LON, rng, clat: float, clon: float, vmax: float, r17: float,
                      core_sign: float) -> tuple[np.ndarray, float]:
    """Add a cyclone of TC size and intensity to the fields: Holland (1980) pressure profile, the
    pressure drop from Atkinson & Holliday (1977), cyclonic winds with inflow, moist core and heavy
    rain; a warm (``core_sign`` +1, a TC) or cold (−1, a look-alike) temperature anomaly confined to
    the inner core (half the gale radius), so that the wind ring of both looks the same. Returns the
    distance field (degrees) and the core's temperature anomaly (K)."""
    d = _angular_dist(LAT, LON, clat, clon)
    rm = r17 / (vmax / GALE) ** (1 / 0.6) if vmax > GALE else r17 * 0.4  # v ~ vmax (rm/r)^0.6 outside rm
    rm = max(rm, 0.4)
    x = np.maximum(d, 1e-3)
    vt = np.where(x < rm, vmax * x / rm, vmax * (rm / x) ** 0.6) * np.exp(-(x / (4 * r17 + 6)) ** 2)
    dp = 100 * (vmax * 1.944 / 6.7) ** (1 / 0.644)  # Pa, Atkinson & Holliday: v[kt] = 6.7 dp[hPa]^0.644
    pdrop = dp * (1 - np.exp(-(rm / x) ** 1.3))
    for key in ("PSL", "PS"):
        out[key] -= pdrop
    out["Z1000"] -= pdrop / 1.2 / 9.81 * 0.8
    core = np.exp(-(d / max(r17, 1.0)) ** 2)
    inner = np.exp(-(d / max(0.5 * r17, 0.8)) ** 2)
    warm = core_sign * 0.1 * vmax * rng.uniform(0.7, 1.3)  # K
    out["T500"] += warm * inner
    out["T200"] += 0.6 * warm * inner
    out["TMQ"] += (12 + 0.5 * vmax) * core
    out["PRECT"] += 1.5e-7 * (vmax / 20) * core
    dx = ((LON - clon + 180) % 360 - 180) * np.cos(np.radians(LAT))
    dy = LAT - clat
    rr = np.maximum(np.hypot(dx, dy), 1e-6)
    sense = 1.0 if clat > 0 else -1.0
    for uu, vv, fac, inflow in (("U850", "V850", 1.0, 0.1), ("UBOT", "VBOT", 0.85, 0.3)):
        ut, vt_ = -dy / rr, dx / rr  # counter-clockwise unit tangent
        out[uu] += fac * vt * (sense * ut - inflow * dx / rr)
        out[vv] += fac * vt * (sense * vt_ - inflow * dy / rr)
    return d, warm


def stand_in_map(m: StandInClimate, rng: np.random.Generator,
                 orography: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One stand-in time step on the ``(nlat, nlon)`` grid: ``{variable: field}`` (float32, CAM5
    units) and ``LABELS`` (int64, 0 BG, 1 TC, 2 AR); see the module docstring.
    ``orography`` ((nlat, nlon), unit variance): the fixed surface height pattern (default: the
    seed's, :func:`orography_for`)."""
    lat, lon = _grid(m)
    LON, LAT = np.meshgrid(lon, lat)
    phi = np.radians(LAT)
    trop = 3 * np.cos(phi) ** 2 - 2
    jet = np.exp(-((np.abs(LAT) - 45) / 12) ** 2)
    S = {v: STD[i] for i, v in enumerate(VARIABLES)}
    out = {}
    for i, v in enumerate(VARIABLES):
        a, j = _PROFILE[v]
        out[v] = MEAN[i] + STD[i] * (a * trop + j * jet)
    clim_tmq = out["TMQ"].copy()
    w = float(m.weather)
    psi, moist, temp = random_fields(rng, m.nlat, m.nlon, [(3.0, 14.0), (1.5, 25.0), (3.0, 10.0)])
    # --- background weather: geostrophic flow from the streamfunction, pressure ~ psi * sin(lat)
    dpx, dpy = _ddx_ddy(psi, lat)
    gscale = 1 / np.sqrt(np.mean(dpx ** 2 + dpy ** 2) / 2)
    u, v = -dpy * gscale, dpx * gscale  # unit-variance winds
    f = np.sin(phi)
    out["U850"] += w * 0.75 * S["U850"] * u
    out["V850"] += w * 0.9 * S["V850"] * v
    out["UBOT"] += w * 0.7 * 0.75 * S["U850"] * (u + 0.3 * v * np.sign(phi))
    out["VBOT"] += w * 0.7 * 0.9 * S["V850"] * (v - 0.3 * u * np.sign(phi))
    dpsl = w * 0.5 * S["PSL"] * psi * f / 0.6
    out["PSL"] += dpsl
    out["Z1000"] += dpsl / 1.2 / 9.81 * 0.8
    out["Z200"] += w * 0.4 * S["Z200"] * (psi * f / 0.6 + 0.6 * temp)
    for t, c in (("T200", -0.4), ("T500", 0.5), ("TS", 0.35), ("TREFHT", 0.35)):
        out[t] += w * c * S[t] * temp
    out["TMQ"] += w * 0.25 * S["TMQ"] * moist * np.clip(out["TMQ"] / MEAN[0], 0.2, 2)
    out["QREFHT"] += w * 0.35 * S["QREFHT"] * (0.8 * moist + 0.2 * temp)
    rain = np.maximum(moist - 0.8, 0) ** 1.5
    out["PRECT"] += w * S["PRECT"] * 1.5 * rain
    oro = orography_for(m) if orography is None else orography
    labels = np.zeros(LAT.shape, np.int64)
    # --- tropical cyclones (intensity, size, position), drawn before the rivers some start from
    tcs = []
    for _ in range(int(rng.poisson(m.tc_per_map))):
        hemi = rng.choice([-1.0, 1.0])
        vmax = float(np.clip(22 * np.exp(0.45 * rng.standard_normal()), 8, 75))  # m/s
        r17 = _gale_radius(rng, m)
        tcs.append((hemi * rng.uniform(6, 30), rng.uniform(0, 360), vmax, r17))
    # --- atmospheric rivers: curved, branching, varying-width filaments
    n_ar = max(0, m.ar_per_map + int(rng.integers(-1, 2)))
    n_short = int(rng.poisson(m.short_per_map))  # river-like moist jets too short for the AR rule
    P = _vectors(LON.ravel(), LAT.ravel())
    ar_prof = np.zeros(LAT.shape)
    for k in range(n_ar + n_short):
        short = k >= n_ar
        if not short and tcs and k < len(tcs) and rng.random() < 0.35:  # starts at a cyclone (overlapping events)
            clat, clon = tcs[k][0], tcs[k][1]
            hemi = np.sign(clat)
            lat0, lon0 = clat, clon + rng.uniform(-2, 4)
        else:
            hemi = rng.choice([-1.0, 1.0])
            lat0, lon0 = hemi * (rng.uniform(15, 45) if short else rng.uniform(10, 25)), rng.uniform(0, 360)
        length = float(np.clip(m.ar_length_deg * np.exp(0.5 * rng.standard_normal()), 10, 90)) if not short \
            else rng.uniform(6, 14)
        paths = [_ar_path(rng, lat0, lon0, hemi, length, np.radians(rng.uniform(35, 80)))]
        if not short and rng.random() < 0.4:  # a branch off the main filament
            pl, pn = paths[0]
            b = int(rng.uniform(0.3, 0.7) * len(pl))
            paths.append(_ar_path(rng, pl[b], pn[b], hemi, length * rng.uniform(0.3, 0.6),
                                  np.radians(rng.uniform(10, 110))))
        load = rng.uniform(0.7, 1.25)
        for bi, (pl, pn) in enumerate(paths):
            n = len(pl)
            s = np.linspace(0, 1, n)
            width = m.ar_halfwidth_deg * np.exp(_smooth_series(rng, n, 0.3, max(2, n // 6))) * (0.7 if bi else 1)
            width = np.clip(width, 0.5 * m.ar_halfwidth_deg, 1.6 * m.ar_halfwidth_deg)
            amp = load * np.sin(np.pi * np.clip(s, 0.02, 0.98)) ** 0.4 * np.exp(_smooth_series(rng, n, 0.15, max(2, n // 5)))
            tree = cKDTree(_vectors(pn, pl))
            chord, idx = tree.query(P, distance_upper_bound=2 * np.sin(np.radians(3 * width.max()) / 2))
            near = np.isfinite(chord)
            prof = np.zeros(P.shape[0])
            d = np.degrees(2 * np.arcsin(np.clip(chord[near] / 2, 0, 1)))
            prof[near] = amp[idx[near]] * np.exp(-(d / width[idx[near]]) ** 2)
            prof = prof.reshape(LAT.shape)
            tl = np.gradient(pl)
            tn = ((np.gradient(pn) + 180) % 360 - 180) * np.cos(np.radians(pl))
            nrm = np.maximum(np.hypot(tl, tn), 1e-9)
            ii = np.where(near, idx, 0).reshape(LAT.shape)
            jetspeed = rng.uniform(14, 24)
            out["U850"] += jetspeed * prof * (tn / nrm)[ii]
            out["V850"] += hemi * 0 + jetspeed * prof * (tl / nrm)[ii]
            out["UBOT"] += 0.6 * jetspeed * prof * (tn / nrm)[ii]
            out["VBOT"] += 0.6 * jetspeed * prof * (tl / nrm)[ii]
            ar_prof = np.maximum(ar_prof, prof)
    # moist plumes that are not rivers: round blobs of moisture and wind (they fail the AR shape rule,
    # and merge with a river they touch)
    for _ in range(int(rng.poisson(m.decoys_per_map))):
        hemi = rng.choice([-1.0, 1.0])
        clat, clon, r = hemi * rng.uniform(12, 50), rng.uniform(0, 360), rng.uniform(4, 9)
        prof = rng.uniform(0.7, 1.25) * np.exp(-(_angular_dist(LAT, LON, clat, clon) / r) ** 2)
        ang, speed = rng.uniform(0, 2 * np.pi), rng.uniform(14, 24)  # a river's moisture load and jet speed
        for uu, vv, fac in (("U850", "V850", 1.0), ("UBOT", "VBOT", 0.6)):
            out[uu] += fac * speed * prof * np.cos(ang)
            out[vv] += fac * speed * prof * np.sin(ang)
        ar_prof = np.maximum(ar_prof, prof)
    out["TMQ"] += 26 * ar_prof
    out["QREFHT"] += 0.005 * ar_prof
    out["PRECT"] += 2.5e-7 * ar_prof * np.clip(1 + 0.8 * moist, 0, None)
    out["TS"] += 1.5 * ar_prof
    out["TREFHT"] += 1.5 * ar_prof
    # --- tropical cyclones (warm core), then cold-core gale lows at the same latitudes whose wind ring
    # is a TC's: only the core's temperature tells them apart
    tc_masks = []
    for clat, clon, vmax, r17 in tcs:
        d, warm = _tropical_cyclone(out, LAT, LON, rng, clat, clon, vmax, r17, +1)
        tc_masks.append((clat, clon, vmax, r17, d, warm))
    for _ in range(int(rng.poisson(m.lows_per_map))):
        vmax = float(np.clip(26 * np.exp(0.3 * rng.standard_normal()), 18, 60))
        r17 = _gale_radius(rng, m)
        _tropical_cyclone(out, LAT, LON, rng, rng.choice([-1.0, 1.0]) * rng.uniform(6, 30), rng.uniform(0, 360),
                          vmax, r17, -1)
    # --- extratropical cyclones: deep, large, cold-core lows with strong winds (not TCs by the rule)
    for _ in range(int(rng.poisson(m.etc_per_map))):
        hemi = rng.choice([-1.0, 1.0])
        clat, clon = hemi * rng.uniform(30, 65), rng.uniform(0, 360)
        d = np.maximum(_angular_dist(LAT, LON, clat, clon), 1e-3)
        rm, vmax = rng.uniform(3, 7), rng.uniform(14, 32)
        vt = np.where(d < rm, vmax * d / rm, vmax * (rm / d) ** 0.8) * np.exp(-(d / (4 * rm)) ** 2)
        pdrop = rng.uniform(1500, 4500) * np.exp(-(d / (1.8 * rm)) ** 2)
        for key in ("PSL", "PS"):
            out[key] -= pdrop
        out["Z1000"] -= pdrop / 1.2 / 9.81 * 0.8
        core = np.exp(-(d / (1.5 * rm)) ** 2)
        out["T500"] -= rng.uniform(1, 5) * core
        out["TMQ"] += rng.uniform(0, 12) * core
        out["PRECT"] += rng.uniform(0.3, 1.5) * 1e-7 * core
        dx = ((LON - clon + 180) % 360 - 180) * np.cos(np.radians(LAT))
        dy = LAT - clat
        rr = np.maximum(np.hypot(dx, dy), 1e-6)
        sense = 1.0 if clat > 0 else -1.0
        for uu, vv, fac in (("U850", "V850", 1.0), ("UBOT", "VBOT", 0.8)):
            out[uu] += fac * vt * (sense * -dy / rr - 0.2 * dx / rr)
            out[vv] += fac * vt * (sense * dx / rr - 0.2 * dy / rr)
    # --- orography and the surface fields that follow it
    out["PS"] -= 0.45 * S["PS"] * np.maximum(oro, 0) * 2
    out["ZBOT"] += 0.3 * S["ZBOT"] * temp + 0.5 * S["ZBOT"] * oro
    for key in ("TMQ", "QREFHT", "PRECT"):
        out[key] = np.maximum(out[key], 0.02 * MEAN[VARIABLES.index(key)])
    # --- labels by threshold rules on the fields
    jit = rng.uniform(0.94, 1.06, size=3)
    wind = np.hypot(out["UBOT"], out["VBOT"])
    tc = np.zeros(LAT.shape, bool)
    for clat, clon, vmax, r17, d, warm in tc_masks:
        near = d < 2 * r17 + 2
        if wind[near].max() < GALE * jit[0] or warm < 1.0:
            continue  # tropical depression: not a TC by the rule
        cand = near & (wind >= GALE * jit[0])
        cand = ndimage.binary_fill_holes(cand | (d < 0.5 * max(r17, 1.0)) & near)
        comp, _ = _periodic_label(cand)
        keep = np.unique(comp[(d < max(r17, 2.0)) & cand])
        tc |= np.isin(comp, keep[keep > 0])
    ivt = out["TMQ"] * np.hypot(out["U850"], out["V850"])
    cand = (out["TMQ"] - clim_tmq >= m.ar_tmq_anomaly * jit[1]) & (ivt >= IVT_THRESHOLD * jit[2]) \
        & (np.abs(LAT) >= 8)
    comp, n = _periodic_label(cand)
    ar = np.zeros(LAT.shape, bool)
    cosw = np.cos(phi)
    for c in range(1, n + 1):
        sel = comp == c
        if not sel.any() or sel.sum() < 3:
            continue
        vec = P[sel.ravel()]
        cen = vec.mean(0)
        cen /= np.linalg.norm(cen)
        rad = np.degrees(np.arccos(np.clip(vec @ cen, -1, 1)))
        extent = 2 * rad.max()  # degrees of arc
        area = (cosw[sel] * (180 / m.nlat) * (360 / m.nlon)).sum()  # deg^2
        if extent * _KM_PER_DEG >= 2000 and area / extent ** 2 <= 0.35 and np.abs(LAT[sel]).max() >= 25:
            ar |= sel
    tc = _border_noise(rng, tc, m.label_noise)
    ar = _border_noise(rng, ar, m.label_noise)
    labels[ar] = 2
    labels[tc] = 1
    return {v: a.astype(np.float32) for v, a in out.items()}, labels


@functools.lru_cache(maxsize=4)
def _orography(seed: int, nlat: int, nlon: int) -> np.ndarray:
    return random_fields(np.random.default_rng([int(seed), 13]), nlat, nlon, [(2.0, 20.0)])[0]


def orography_for(m: StandInClimate) -> np.ndarray:
    """The fixed surface-height pattern of a stand-in (unit variance; the same on every map)."""
    return _orography(int(m.seed), int(m.nlat), int(m.nlon))


def stand_in_description(m: StandInClimate) -> str:
    return (f"Offline stand-in: {m.files} ClimateNet-style netCDF files (one time step each, dims (time, lat, "
            f"lon) = (1, {m.nlat}, {m.nlon}), the 16 CAM5 variables and LABELS; written by "
            f"datamodules/climate_standin.py::write_stand_in, seed {m.seed}). Backgrounds: the published "
            f"UGSCNN mean plus std x (zonal climatology + weather x {m.weather:g}); the weather is random "
            f"band-limited fields from spherical-harmonic synthesis (degree <= {LMAX}): a synoptic-scale "
            f"streamfunction (C_l ~ l^-3 exp(-(l/14)^2)) gives geostrophic winds and sea-level pressure "
            f"(extratropical lows and highs), a rougher moisture field TMQ, QREFHT and rain patches, a "
            f"temperature field the four temperatures; a fixed orography lowers PS. Atmospheric rivers "
            f"({m.ar_per_map} +/- 1 per map): curved filaments of lognormal length (median "
            f"{m.ar_length_deg:g} deg), half-width varying along them (median {m.ar_halfwidth_deg:g} deg), "
            f"40 % branching, a third starting at a tropical cyclone; moisture, a low-level jet along them; "
            f"besides them look-alikes the rules reject (Poisson means per map): round moist, windy plumes "
            f"({m.decoys_per_map:g}) and river-like jets too short for the AR rule ({m.short_per_map:g}), both "
            f"with a river's moisture and jet; cold-core extratropical lows ({m.etc_per_map:g}); cold-core "
            f"gale-force lows at TC latitudes with a TC's wind ring ({m.lows_per_map:g}). "
            f"Tropical cyclones (Poisson, mean {m.tc_per_map:g} per map, 6-30 deg from the equator): "
            f"lognormal maximum wind (median 22 m/s) and gale radius (median {m.tc_radius_deg:g} deg), "
            f"Holland pressure profile, cyclonic winds, moist core, warm inner core. Labels follow the fields by "
            f"threshold rules (TECA-like): TC where the near-surface wind of a warm-core cyclone reaches "
            f"gale force (17 m/s; weaker storms stay background); AR on connected regions with TMQ "
            f">= {m.ar_tmq_anomaly:g} kg m-2 above the zonal climatology and TMQ x |V850| >= "
            f"{IVT_THRESHOLD:g} kg m-1 s-1 that are >= 2,000 km long, narrow and reach 25 deg latitude; "
            f"thresholds vary +/-6 % between maps and label border pixels flip with probability "
            f"{m.label_noise:g}. Read back through the same netCDF reader and resampler as real data.")


def write_stand_in(data_dir: str | os.PathLike, m: StandInClimate = StandInClimate()) -> Path:
    """Write the stand-in netCDF files (``data-YYYY-MM-DD-HH-1.nc``, 3-hourly dates from
    2106-01-01) into ``data_dir``. No manifest: :meth:`ClimateDataModule.prepare_data` writes it
    through :func:`datamodules._common.ensure_stand_in`."""
    import xarray as xr
    from tqdm import tqdm

    root = Path(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([int(m.seed), 12])
    lat, lon = _grid(m)
    for i in tqdm(range(int(m.files)), desc="climate stand-in", unit="file", leave=False):
        fields, labels = stand_in_map(m, rng)
        hours = 3 * i
        day = hours // 24
        date = f"2106-{1 + day // 28:02d}-{1 + day % 28:02d}-{hours % 24:02d}"
        ds = xr.Dataset(
            {v: (("time", "lat", "lon"), a[None], {"units": _ATTRS[v][0], "long_name": _ATTRS[v][1]})
             for v, a in fields.items()},
            coords={"time": ("time", [float(hours) / 24], {"units": "days since 2106-01-01 00:00:00",
                                                          "calendar": "noleap"}),
                    "lat": ("lat", lat, {"units": "degrees_north"}),
                    "lon": ("lon", lon, {"units": "degrees_east"})},
            attrs={"title": "equivariant-bench CAM5 stand-in (synthetic)", "source": "datamodules/climate_standin.py"})
        ds[LABEL_VAR] = (("time", "lat", "lon"), labels[None], {"long_name": "0 background, 1 TC, 2 AR"})
        path = root / f"data-{date}-1.nc"
        with atomic_path(path) as tmp:
            ds.to_netcdf(tmp, engine="netcdf4")
    return root
