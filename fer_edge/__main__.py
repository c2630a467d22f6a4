from fer_edge.cli import main

main()
