"""Task definitions: unlit_lamps, single_lamp, second_order, ood_transfer."""
