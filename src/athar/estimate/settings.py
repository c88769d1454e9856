"""Settings of the latent-class sampler, in a module light enough for the CLI to import at
start-up (the estimators themselves load numpy, scipy and statsmodels)."""

from __future__ import annotations

from dataclasses import dataclass

from athar.errors import InputError


@dataclass(frozen=True)
class LcmcrSettings:
    """Sampler settings; the defaults follow LCMCR's (K = 10, a = b = 0.25) with four
    chains so that R-hat can be computed."""

    classes: int = 10  # K, the truncation of the stick-breaking prior
    a_alpha: float = 0.25
    b_alpha: float = 0.25
    chains: int = 4
    burnin: int = 10_000  # iterations discarded per chain
    samples: int = 1_000  # draws kept per chain
    thin: int = 20  # iterations between kept draws

    def check(self) -> None:
        for name in ("classes", "chains", "samples", "thin"):
            if getattr(self, name) < 1:
                raise InputError("the sampler setting {name} must be at least 1", name=name)
        if self.burnin < 0:
            raise InputError("the sampler setting {name} must be at least 0", name="burnin")
        if self.chains < 2 or self.samples < 4:
            raise InputError(
                "convergence cannot be checked with fewer than 2 chains or 4 draws per chain"
            )
        if not (self.a_alpha > 0 and self.b_alpha > 0):
            raise InputError("the prior of alpha needs positive a_alpha and b_alpha")

    @property
    def iterations(self) -> int:
        return self.burnin + self.samples * self.thin
