"""autonomy.replay"""
