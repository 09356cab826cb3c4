"""autonomy.tracking"""
