"""autonomy.runtime"""
