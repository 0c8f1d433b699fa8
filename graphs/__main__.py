from graphs.cli import main

main()
