from census.cli import main

main()
