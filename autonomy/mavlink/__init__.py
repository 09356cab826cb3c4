"""autonomy.mavlink"""
