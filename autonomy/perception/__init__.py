"""autonomy.perception"""
