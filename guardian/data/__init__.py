"""Layer 2: dataset building, from chunks to checked, split samples with a card."""
