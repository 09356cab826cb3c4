"""autonomy.guidance"""
