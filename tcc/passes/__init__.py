"""tcc.passes"""
