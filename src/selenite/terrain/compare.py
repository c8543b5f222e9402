"""Agreement of two rasters of the same quantity (ours against a reference such as NASA PGDA's products).

The reference is resampled onto our grid (bilinear for continuous values, nearest for masks). Continuous
rasters: bias, MAE, RMSE, Pearson r over the pixels valid in both. Masks (values 0/1, e.g. PSR): fraction
agreement, the agreement expected by chance from the two prevalences (p₁p₂ + (1 − p₁)(1 − p₂)), Cohen's κ,
and the intersection over union of the class 1 — a high raw agreement on a rare class means little without
the chance level, which is why both are reported.
"""

from __future__ import annotations

import numpy as np
import rasterio
from rasterio.warp import Resampling, reproject

from selenite.errors import InputError
from selenite.geo.raster import open_raster, read_raster


def _is_mask(a: np.ndarray) -> bool:
    v = a[np.isfinite(a)]
    return v.size > 0 and bool(np.isin(v, (0.0, 1.0)).all())


def _reference_on_grid(ours_path, ref_path, nearest: bool) -> np.ndarray:
    with open_raster(ours_path) as o, open_raster(ref_path) as r:
        dst = np.full((o.height, o.width), np.nan, np.float64)
        src = r.read(1).astype(np.float64)
        nd = r.nodata
        if nd is not None and not np.isnan(nd):
            src[src == nd] = np.nan
        src = src * float(r.scales[0] or 1.0) + float(r.offsets[0] or 0.0)
        reproject(src, dst, src_transform=r.transform, src_crs=r.crs, dst_transform=o.transform, dst_crs=o.crs,
                  src_nodata=np.nan, dst_nodata=np.nan,
                  resampling=Resampling.nearest if nearest else Resampling.bilinear)
    return dst


def compare_rasters(ours_path, ref_path) -> dict:
    ours, _ = read_raster(ours_path)
    with open_raster(ref_path):
        pass
    ref_native, _ = read_raster(ref_path)
    mask = _is_mask(ours) and _is_mask(ref_native)
    ref = _reference_on_grid(ours_path, ref_path, nearest=mask)
    both = np.isfinite(ours) & np.isfinite(ref)
    n = int(both.sum())
    if n == 0:
        raise InputError(f"{ours_path} and {ref_path} do not overlap (no pixel valid in both)")
    a, b = ours[both], ref[both]
    out: dict = {"pixels": n, "kind": "mask" if mask else "continuous",
                 "overlap_fraction_of_ours": n / float(np.isfinite(ours).sum())}
    if mask:
        a1, b1 = a > 0.5, b > 0.5
        agree = float((a1 == b1).mean())
        p1, p2 = float(a1.mean()), float(b1.mean())
        chance = p1 * p2 + (1 - p1) * (1 - p2)
        union = int((a1 | b1).sum())
        out.update({"agreement": agree, "chance_agreement": chance,
                    "kappa": (agree - chance) / (1 - chance) if chance < 1 else float("nan"),
                    "ours_fraction": p1, "reference_fraction": p2,
                    "iou_class1": int((a1 & b1).sum()) / union if union else float("nan")})
    else:
        d = a - b
        out.update({"bias": float(d.mean()), "mae": float(np.abs(d).mean()), "rmse": float(np.sqrt((d * d).mean())),
                    "pearson_r": float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan"),
                    "ours_mean": float(a.mean()), "reference_mean": float(b.mean())})
    return out


def format_comparison(c: dict) -> str:
    if c["kind"] == "mask":
        return (f"masks over {c['pixels']} pixels: agreement {100 * c['agreement']:.2f} % (chance "
                f"{100 * c['chance_agreement']:.2f} %), kappa {c['kappa']:.3f}, IoU of class 1 {c['iou_class1']:.3f}"
                f" (ours {100 * c['ours_fraction']:.2f} %, reference {100 * c['reference_fraction']:.2f} %)")
    return (f"{c['pixels']} pixels: bias {c['bias']:+.3f}, MAE {c['mae']:.3f}, RMSE {c['rmse']:.3f}, "
            f"r {c['pearson_r']:.4f} (means: ours {c['ours_mean']:.3f}, reference {c['reference_mean']:.3f})")


def reproject_dem(dem_path, out_path, crs=None, res_m: float | None = None) -> dict:
    """Resample a DEM (e.g. geographic) onto a projected lunar grid: polar stereographic beyond ±80° latitude,
    a local stereographic map centred on the DEM otherwise; bilinear."""
    from rasterio.warp import calculate_default_transform

    from selenite.geo.crs import as_crs, local_stereographic, polar_stereographic
    from selenite.geo.raster import info_of, read_dem, write_cog

    z, info = read_dem(dem_path)
    with open_raster(dem_path) as ds:
        src_crs = ds.crs
        left, bottom, right, top = ds.bounds
        if crs is None:
            lon, lat = info_of(ds).pixel_to_lonlat((ds.width - 1) / 2, (ds.height - 1) / 2)
            lat, lon = float(lat), float(lon)
            dst = polar_stereographic(south=lat < 0) if abs(lat) > 80 else local_stereographic(lon, lat)
        else:
            dst = as_crs(crs)
        dst_rio = rasterio.crs.CRS.from_wkt(dst.to_wkt())
        kw = {"resolution": res_m} if res_m else {}
        transform, w, h = calculate_default_transform(src_crs, dst_rio, ds.width, ds.height, left, bottom, right,
                                                      top, **kw)
    out = np.full((h, w), np.nan, np.float32)
    reproject(z.astype(np.float32), out, src_transform=info.transform, src_crs=src_crs, dst_transform=transform,
              dst_crs=dst_rio, src_nodata=np.nan, dst_nodata=np.nan, resampling=Resampling.bilinear)
    write_cog(out_path, out, crs=dst, transform=transform, nodata=-32768.0)
    return {"crs": dst.name, "width": w, "height": h, "pixel_m": abs(transform.a)}
