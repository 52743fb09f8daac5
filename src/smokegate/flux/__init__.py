"""Flux specifics: HelmRelease status semantics (helm-controller v2 API) and the
notification-controller event format. Pure data handling plus one HTTP POST; no cluster calls."""
