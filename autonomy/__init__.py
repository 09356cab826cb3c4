"""Onboard autonomy for a low-cost interceptor drone (see DESIGN.md in the shared folder)."""

__version__ = "0.1.0"
