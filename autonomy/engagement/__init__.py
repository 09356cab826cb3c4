"""autonomy.engagement"""
