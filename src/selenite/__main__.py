from selenite.cli import main

main()
