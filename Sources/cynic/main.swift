print("cynic")
